#!/usr/bin/env bash
# The runs behind docs/experiments.md, in order; about 8 minutes on a 2-core CPU.
# Writes out/digits (the data), out/runs/* (one archdsl train run folder each) and the plots in
# docs/experiments/. Override the programs with ARCHDSL="python -m archdsl" PYTHON=python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCHDSL=${ARCHDSL:-archdsl}
PYTHON=${PYTHON:-python}
EPOCHS=${EPOCHS:-15}
mkdir -p docs/experiments

$PYTHON experiments/digits.py out/digits --size 32 --seed 0

# (a) batch normalization vs none, at two learning rates, same epochs and schedule
for lr in 0.02 0.2; do
  for bn in true false; do
    $ARCHDSL train experiments/digits_cnn.arch --data out/digits --out out/runs/bn_${bn}_lr${lr} \
      --epochs "$EPOCHS" --lr $lr -p bn=$bn --seed 0
  done
  # the no-BN network again with He initialization (PyTorch's default init shrinks the signal)
  $ARCHDSL train experiments/digits_cnn.arch --data out/digits --out out/runs/bn_false_he_lr${lr} \
    --epochs "$EPOCHS" --lr $lr -p bn=false -p he_init=true --seed 0
done
$PYTHON experiments/report.py --threshold 0.95 --plot docs/experiments/bn_val_top1.png \
  --title "digits 32x32, val top-1: batchnorm vs none, SGD lr 0.02 / 0.2" \
  "bn, lr 0.02=out/runs/bn_true_lr0.02" "no bn, lr 0.02=out/runs/bn_false_lr0.02" \
  "bn, lr 0.2=out/runs/bn_true_lr0.2" "no bn, lr 0.2=out/runs/bn_false_lr0.2" \
  "no bn + He init, lr 0.02=out/runs/bn_false_he_lr0.02" "no bn + He init, lr 0.2=out/runs/bn_false_he_lr0.2"

# (b) label smoothing 0.1 vs none (BN network, lr 0.2), two seeds each; calibration on the val split
for seed in 0 1; do
  for s in 0.0 0.1; do
    $ARCHDSL train experiments/digits_cnn.arch --data out/digits --out out/runs/ls${s}_seed${seed} \
      --epochs "$EPOCHS" --lr 0.2 -p smoothing=$s --seed $seed
    $PYTHON experiments/calibration.py out/runs/ls${s}_seed${seed}/last.pt --data out/digits \
      --plot docs/experiments/reliability_ls${s}_seed${seed}.png \
      --title "label smoothing $s, seed $seed (last.pt)"
  done
done
$PYTHON experiments/report.py --threshold 0.95 --plot docs/experiments/ls_val_top1.png \
  --title "digits 32x32, val top-1: label smoothing 0.1 vs none (bn, lr 0.2)" \
  "ls 0.0, seed 0=out/runs/ls0.0_seed0" "ls 0.1, seed 0=out/runs/ls0.1_seed0" \
  "ls 0.0, seed 1=out/runs/ls0.0_seed1" "ls 0.1, seed 1=out/runs/ls0.1_seed1"
