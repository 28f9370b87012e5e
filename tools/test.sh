#!/usr/bin/env bash
# Installs everything the test suite needs into ./.venv (PyTorch CPU 2.13.0, archdsl with its
# test extras, Graphviz and Chromium when this machine can install them) and runs the tests; before
# them, tests/test_exactness.py and tests/test_train_mode_*.py against the reference implementations
# in ./.venv-ref (see below).
# Extra arguments go to the main run's pytest. Exits non-zero if either run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 hatchling editables
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[test,onnx]'
# System packages: Graphviz's `dot` (render tests) and Debian's Chromium + ChromeDriver (the HTML
# viewer's headless-browser test). Tests that need a missing one are skipped with a message saying so.
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v nvim >/dev/null 2>&1 || need+=(neovim)   # the editor test: Neovim's LSP client against `archdsl lsp`
command -v tmux >/dev/null 2>&1 || need+=(tmux)     # ... in a tmux window whose screen it captures
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (for the render and browser tests) ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
      || echo "warning: could not install ${need[*]}; the tests that need them will be skipped"
    apt-get clean || true   # the downloaded .debs: disk the reference venv below needs more
  else
    echo "warning: ${need[*]} not installed (apt-get install ${need[*]}); the tests that need them will be skipped"
  fi
fi
# Reference implementations: tests/test_exactness.py compares every zoo spec with torchvision, timm
# and pretrainedmodels; .venv has none of them (there those tests skip), and they want the PyTorch
# the zoo was measured with, so they get their own venv. PyPI's torch 2.14.1 is the CUDA build, 5.7 GB
# with everything it requires; a CI run once died of a full disk while installing it. Its CUDA
# libraries are linked into libtorch and must be there even on a CPU, but triton (0.9 GB, only used
# by torch.compile on a GPU), cupti and nvtx are not: the four packages go in without their
# dependencies, then the rest of them by name (4.6 GB; the 156 tests pass the same). --no-cache-dir
# keeps pip from storing a second copy in ~/.cache. An existing .venv-ref is reused (pip then only
# checks it). pretrainedmodels imports six undeclared.
echo "disk before the reference venv: $(df -h . | awk 'NR == 2 {print $4 " free of " $2}')"
[ -x .venv-ref/bin/python ] || "$PY" -m venv .venv-ref
pipref=(.venv-ref/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir)
echo "(pip may then say that torch requires triton: it is left out on purpose)"
"${pipref[@]}" --no-deps torch==2.14.1 torchvision==0.29.1 timm==1.0.31 pretrainedmodels==0.7.4
"${pipref[@]}" filelock 'typing-extensions>=4.10' 'setuptools>=77.0.3' 'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 \
  'fsspec>=0.8.5' 'cuda-toolkit[cublas,cudart,cufft,cufile,curand,cusolver,cusparse,nvjitlink,nvrtc]==13.0.3' \
  'cuda-bindings>=13.0.3,<14' nvidia-cudnn-cu13==9.24.0.43 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 \
  nvidia-nvshmem-cu13==3.4.5 numpy pillow pyyaml huggingface_hub safetensors munch tqdm six hatchling editables
.venv-ref/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[test]'
# The exactness run goes first so that the output's last pytest summary line is the main suite's.
# In .venv-ref nothing may skip (a skip would hide a reference that failed to import or build), and
# a failure here still lets the main suite run; the script's exit status reports both. One torch
# thread per xdist worker: with two each on two cores this run took 2-3x as long (110 s vs 44-52 s).
# The train-mode tests (stochastic depth, dropout and BN statistics against the references under
# one seed) need the references too.
echo "== exactness and train-mode tests in .venv-ref (torch 2.14.1, torchvision, timm, pretrainedmodels) =="
ref_status=0
OMP_NUM_THREADS=1 .venv-ref/bin/python -m pytest -n 2 -q tests/test_exactness.py tests/test_train_mode_*.py tests/test_train_loop.py tests/test_train_data.py 2>&1 \
  | tee .venv-ref/exactness.log || ref_status=$?
if [ "$ref_status" = 0 ] && grep -q '^SKIPPED' .venv-ref/exactness.log; then
  echo "error: tests were skipped in .venv-ref, where every reference must be available"
  ref_status=1
fi
[ "$ref_status" = 0 ] || echo "error: the exactness run failed (exit $ref_status, above); running the main suite anyway"
# The editor package's grammar tests (vscode-tmgrammar-test) and the Mermaid parser want node packages;
# their tests skip, naming the install command, when these are missing.
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix editors/vscode --no-audit --no-fund --loglevel=error \
    || echo "warning: npm ci failed; the editor grammar tests will be skipped"
  npm ci --prefix tools/mermaid --no-audit --no-fund --loglevel=error \
    || echo "warning: npm ci failed; the Mermaid parse tests will be skipped"
  # the YAML engine of VS Code's YAML extension, which tests/test_schema.py drives with the JSON Schema
  command -v yaml-language-server >/dev/null 2>&1 \
    || npm install -g yaml-language-server@2.0.0 --no-audit --no-fund --loglevel=error \
    || echo "warning: could not install yaml-language-server; its schema test will be skipped"
fi
echo "== main suite in .venv (torch 2.13.0 CPU) =="
status=0
.venv/bin/python -m pytest -n 2 -q "$@" || status=$?
[ "$status" != 0 ] || status=$ref_status
exit "$status"
