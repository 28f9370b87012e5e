"""``archdsl train``: learns a small ImageFolder, resumes exactly, runs under torchrun, fails cleanly.

Needs torchvision and PIL (the reference venv; tools/test.sh runs this file there). Every run is a
few CPU epochs of a tiny network on 16x16 PNGs written by tests/imagefolder_support.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("PIL")

from archdsl.cli import main  # noqa: E402
from archdsl.train import TrainConfig, loop  # noqa: E402
from archdsl.train.cli import run_reporting  # noqa: E402
from archdsl.train.progress import Progress, epoch_line  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from imagefolder_support import make_imagefolder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4

SPEC = """\
network tiny(num_classes = 10, width = 8)
input 3x16x16
loss cross_entropy(label_smoothing = 0.05)
init conv2d: kaiming_normal(mode = "fan_out", nonlinearity = "relu")
init linear: normal(0, 0.01, bias = 0)
conv1: conv2d(width, 3, padding = 1, bias = false)
bn1: batchnorm
relu
maxpool(2)
conv2: conv2d(2 * width, 3, padding = 1, bias = false)
bn2: batchnorm
relu
maxpool(2)
flatten
dropout(0.1)
fc: linear(num_classes)
"""

# No num_classes parameter: the output width (10) cannot follow a 3-class data set.
FIXED_SPEC = """\
network fixed
input 3x16x16
conv2d(4, 3, padding = 1)
global_avgpool
flatten
fc: linear(10)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """The data set, the spec, and one full reference run (EPOCHS epochs, EMA on)."""
    base = tmp_path_factory.mktemp("train")
    data = make_imagefolder(base / "data", classes=3, size=16, seed=0)
    spec = base / "tiny.arch"
    spec.write_text(SPEC)
    full = _cfg(spec, data, base / "full")
    assert loop.run(full) == 0
    return {"base": base, "data": data, "spec": spec, "full": base / "full"}


def _cfg(spec: Path, data: Path, out: Path, **kw) -> TrainConfig:
    args = dict(spec=str(spec), data=str(data), out=str(out), epochs=EPOCHS, batch=16, lr=0.05, workers=0,
                ema=0.9, seed=1, progress=False)
    args.update(kw)
    return TrainConfig(**args)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_tensors(a, b, where: str = "") -> None:
    """Every tensor in two nested structures is torch.equal (bit-identical)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_same_training(a: dict, b: dict) -> None:
    for key in ("model", "optimizer", "scheduler", "ema"):
        _assert_same_tensors(a[key], b[key], key)
    assert (a["epoch"], a["step"], a["batch_in_epoch"]) == (b["epoch"], b["step"], b["batch_in_epoch"])


# ------------------------------------------------------------------------------------ learning


def test_learns_the_data_to_90_percent_top1(world) -> None:
    rows = _metrics(world["full"])
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert set(rows[0]) == {"epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr", "img_per_s", "seconds"}
    assert rows[-1]["val_top1"] >= 0.9, rows
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(r["val_top5"] == 1.0 for r in rows)  # 3 classes: top-5 holds them all
    assert rows[-1]["lr"] < rows[0]["lr"]  # cosine decay after one warmup epoch


def test_run_folder_contents(world) -> None:
    run = world["full"]
    assert {p.name for p in run.iterdir()} == {"metrics.jsonl", "last.pt", "best.pt", "curves.png", "spec"}
    assert (run / "spec" / "tiny.arch").read_text() == SPEC
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = _load(run / "last.pt")
    import archdsl

    built = archdsl.build(str(world["spec"]), num_classes=3)
    assert list(last["model"]) == list(built.state_dict())  # the spec's own keys
    assert last["spec_source"] == SPEC
    assert last["spec_hash"] == loop.spec_hash(SPEC, {"num_classes": 3, "width": 8})
    assert last["classes"] == sorted(last["classes"]) and len(last["classes"]) == 3
    assert last["epoch"] == EPOCHS and last["batch_in_epoch"] == 0
    assert last["scheduler"]["last_epoch"] == last["step"]
    for key in ("optimizer", "ema", "rng", "config"):
        assert key in last
    best = _load(run / "best.pt")
    assert best["best_top1"] == max(r["val_top1"] for r in _metrics(run))


def test_weight_decay_skips_norm_weights_and_biases() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    decay, plain = loop.param_groups(model, 5e-4)
    assert [tuple(p.shape) for p in decay["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert decay["weight_decay"] == 5e-4 and plain["weight_decay"] == 0.0
    assert len(plain["params"]) == 4  # conv bias, bn weight and bias, fc bias


def test_schedule_warms_up_then_decays_to_zero() -> None:
    f = [loop.lr_factor(s, 4, 20) for s in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == 1.0 and all(a >= b for a, b in zip(f[4:], f[5:])) and f[-1] > 0
    assert loop.lr_factor(20, 4, 20) == 0.0


# ------------------------------------------------------------------------------------ resume


def test_resume_after_k_epochs_is_bit_identical(world) -> None:
    out = world["base"] / "split"
    assert loop.run(_cfg(world["spec"], world["data"], out, stop_after=2)) == 0
    assert _load(out / "last.pt")["epoch"] == 2
    assert loop.run(_cfg(world["spec"], world["data"], out, resume=str(out / "last.pt"))) == 0
    _assert_same_training(_load(world["full"] / "last.pt"), _load(out / "last.pt"))
    full, split = _metrics(world["full"]), _metrics(out)
    assert [r["val_top1"] for r in full] == [r["val_top1"] for r in split]


def test_ctrl_c_writes_last_pt_and_resume_continues_exactly(world, monkeypatch, capsys) -> None:
    out = world["base"] / "interrupted"
    real_step = loop.Job._step
    calls = {"n": 0}
    stop = _load(world["full"] / "last.pt")["step"] // EPOCHS + 2  # two steps into the second epoch

    def step(self, x, y):
        calls["n"] += 1
        if calls["n"] == stop:
            raise KeyboardInterrupt
        return real_step(self, x, y)

    monkeypatch.setattr(loop.Job, "_step", step)
    assert run_reporting(_cfg(world["spec"], world["data"], out)) == 130
    err = capsys.readouterr().err
    assert f"wrote {out / 'last.pt'}" in err and "--resume" in err and "Traceback" not in err
    stopped = _load(out / "last.pt")
    assert (stopped["epoch"], stopped["step"], stopped["batch_in_epoch"]) == (1, stop - 1, 1)
    monkeypatch.setattr(loop.Job, "_step", real_step)
    assert loop.run(_cfg(world["spec"], world["data"], out, resume=str(out / "last.pt"))) == 0
    _assert_same_training(_load(world["full"] / "last.pt"), _load(out / "last.pt"))


def test_resume_from_another_spec_is_refused_naming_both_hashes(world, capsys) -> None:
    ckpt = world["full"] / "last.pt"
    rc = main(["train", str(world["spec"]), "--data", str(world["data"]), "--out", str(world["base"] / "other"),
               "--workers", "0", "-p", "width=4", "--resume", str(ckpt), "--progress", "lines"])
    err = capsys.readouterr().err
    assert rc == 1 and "error[E372]" in err and "Traceback" not in err
    theirs = _load(ckpt)["spec_hash"]
    ours = loop.spec_hash(SPEC, {"num_classes": 3, "width": 4})
    assert theirs[:16] in err and ours[:16] in err


# ------------------------------------------------------------------------------------ torchrun


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(world, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "archdsl", "train",
           str(world["spec"]), "--data", str(world["data"]), "--out", str(out), "--epochs", "2", "--batch", "16",
           "--workers", "0", "--lr", "0.05", "--progress", "lines", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "Traceback" not in r.stderr
    return r


def test_two_processes_under_torchrun(world) -> None:
    out = world["base"] / "ddp"
    r = _torchrun(world, out)
    assert r.stderr.count("note: num_classes = 3") == 1  # rank 0 alone prints
    # only rank 0 logs and writes: one line per epoch, one set of files
    assert r.stdout.count("epoch 1/2 ") == 1 and r.stdout.count("epoch 2/2 ") == 1, r.stdout
    assert {p.name for p in out.iterdir()} == {"metrics.jsonl", "last.pt", "best.pt", "curves.png", "spec"}
    assert len(_metrics(out)) == 2
    last = _load(out / "last.pt")
    assert last["world_size"] == 2
    # each rank saw half the training images per epoch (DistributedSampler): half the steps
    single_per_epoch = _load(world["full"] / "last.pt")["step"] // EPOCHS
    assert 2 * (last["step"] // 2) <= single_per_epoch + 1


# ------------------------------------------------------------------------------------ bad input


def _train(world, *extra: str, spec: Path | None = None, out: str = "bad") -> list[str]:
    return ["train", str(spec or world["spec"]), "--data", str(world["data"]), "--out",
            str(world["base"] / out), "--workers", "0", "--epochs", "1", "--progress", "lines", *extra]


def test_cuda_requested_but_absent(world, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(_train(world, "--device", "cuda")) == 1
    err = capsys.readouterr().err
    assert "error[E370]" in err and "--device cpu" in err and "Traceback" not in err


def test_out_of_memory_suggests_a_smaller_batch(world, monkeypatch, capsys) -> None:
    def step(self, x, y):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop.Job, "_step", step)
    assert main(_train(world, "--batch", "32", out="oom")) == 1
    err = capsys.readouterr().err
    assert "error[E371]" in err and "--batch 16" in err and "Traceback" not in err


def test_spec_with_errors_prints_the_usual_diagnostics(world, capsys) -> None:
    bad = world["base"] / "broken.arch"
    bad.write_text(SPEC.replace("bn1: batchnorm", "bn1: batchnrom"))
    assert main(_train(world, spec=bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:7:6: error[E101]" in err and "Traceback" not in err


def test_output_width_that_cannot_follow_the_data(world, capsys) -> None:
    fixed = world["base"] / "fixed.arch"
    fixed.write_text(FIXED_SPEC)
    assert main(_train(world, spec=fixed)) == 1
    err = capsys.readouterr().err
    assert "error[E374]" in err and "10" in err and "3 classes" in err


def test_num_classes_override_that_contradicts_the_data(world, capsys) -> None:
    assert main(_train(world, "-p", "num_classes=5")) == 1
    assert "error[E374]" in capsys.readouterr().err


def test_data_errors_are_diagnostics(world, capsys) -> None:
    rc = main(["train", str(world["spec"]), "--data", str(world["base"] / "nowhere"), "--out",
               str(world["base"] / "bad"), "--progress", "lines"])
    err = capsys.readouterr().err
    assert rc == 1 and "error[E36" in err and "Traceback" not in err


def test_resume_checkpoint_missing(world, capsys) -> None:
    assert main(_train(world, "--resume", str(world["base"] / "none.pt"))) == 1
    assert "error[E373]" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ output


def test_epoch_line_and_num_classes_note(world, capsys) -> None:
    rc = main(_train(world, out="note"))
    cap = capsys.readouterr()
    assert rc == 0
    assert "note: num_classes = 3 (the data's class folders), not the spec's default 10" in cap.err
    line = cap.out.splitlines()[0]
    assert line.startswith("epoch 1/1  train_loss ") and " val_top1 " in line and line.endswith(" s")


def test_progress_bar_draws_with_rich() -> None:
    import io

    pytest.importorskip("rich")
    stream, lines = io.StringIO(), io.StringIO()
    p = Progress(2, bar=True, stream=stream, lines=lines)
    p.start_epoch(1, 3)
    for _ in range(3):
        p.step(0.5, 8)
    m = {"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "val_top1": 0.9, "val_top5": 1.0, "lr": 0.05,
         "img_per_s": 100.0, "seconds": 1.0}
    p.end_epoch(m)
    p.close()
    text = stream.getvalue()
    assert "epoch 1/2" in text and "img/s" in text and epoch_line(m, 2) in text
    assert epoch_line(m, 2) == ("epoch 1/2  train_loss 0.500  val_loss 0.400  val_top1 0.900  val_top5 1.000  "
                                "lr 0.0500  100 img/s  1.0 s")


def test_fsdp_checkpoints_full_weights_and_resumes(world) -> None:
    out = world["base"] / "fsdp"
    _torchrun(world, out, "--fsdp", "--stop-after", "1")
    first = _load(out / "last.pt")
    reference = _load(world["full"] / "last.pt")["model"]
    assert first["epoch"] == 1 and first["world_size"] == 2
    assert {k: v.shape for k, v in first["model"].items()} == {k: v.shape for k, v in reference.items()}
    r = _torchrun(world, out, "--fsdp", "--resume", str(out / "last.pt"))
    assert "resuming" in r.stderr and len(_metrics(out)) == 2
    second = _load(out / "last.pt")
    assert second["epoch"] == 2 and second["step"] == 2 * first["step"]
    assert not torch.equal(second["model"]["fc.weight"], first["model"]["fc.weight"])


@pytest.mark.parametrize(("code", "args", "needle"), [
    ("E370", ("--device", "cuda"), "--device cpu"),
    ("E375", ("--fsdp",), "torchrun"),
])
def test_option_errors_are_located_diagnostics(world, monkeypatch, capsys, code: str, args: tuple, needle: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(_train(world, *args, out=f"opt_{code}")) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and needle in err and "Traceback" not in err


def test_option_values_argparse_cannot_check(world, capsys) -> None:
    # the Python API has no argparse in front of it: E376 guards the values
    cfg = TrainConfig(spec=str(world["spec"]), data=str(world["data"]), out=str(world["base"] / "e376"), epochs=0)
    assert run_reporting(cfg) == 1
    err = capsys.readouterr().err
    assert "error[E376]" in err and "--epochs" in err and "Traceback" not in err


def test_unwritable_run_folder(world, capsys) -> None:
    # the run folder's path is an existing file: nothing can be written under it
    blocker = world["base"] / "afile"
    blocker.write_text("not a folder")
    assert main(_train(world, out="afile")) == 1
    err = capsys.readouterr().err
    assert "error[E378]" in err and "Traceback" not in err


def test_torch_missing(world, monkeypatch, capsys) -> None:
    import builtins

    real = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    rc = main(_train(world, out="notorch"))
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 1 and "error[E379]" in err and "Traceback" not in err


def test_every_train_code_is_tested_here() -> None:
    # the codes the loop raises, each asserted by a test above (test_diagnostics reads this file)
    codes = ("E370", "E371", "E372", "E373", "E374", "E375", "E376", "E378", "E379")
    text = Path(__file__).read_text(encoding="utf-8")
    assert all(f"error[{c}]" in text or f'"{c}"' in text for c in codes)
