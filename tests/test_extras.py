"""The optional extras (``reference`` for ``--check-against``, ``onnx`` for ``--target onnx``): every
missing or mismatched package is a located diagnostic with the command that fixes it, never a
traceback, and the long phases print progress.

The failures are faked in process: ``sys.modules[name] = None`` (not installed), a stand-in package on
``sys.path`` whose import raises (built for another torch), installed versions and metadata replaced
through :mod:`archdsl.backends.extras`' seams, ``torch.onnx.export`` replaced by one that fails.
"""

from __future__ import annotations

import logging
import sys
import types
import warnings
from pathlib import Path

import pytest
from cli_support import run

from archdsl.backends import extras

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TINY = "network tiny\ninput 3x4x4\nflatten\nfc: linear(2)\n"
VENV = "python3 -m venv .venv-ref && .venv-ref/bin/pip install --no-cache-dir '.[reference]'"
ONNX_PIP = "pip install 'onnx>=1.23.1,<2' 'onnxruntime>=1.30' 'onnxscript>=0.7.2,<0.8'"


#: The packages the tests fake, and the folder their stand-ins live in.
FAKED = ("torchvision", "timm", "pretrainedmodels", "six", "onnx", "onnxscript", "onnxruntime")
STAND_INS = "archdsl_stand_ins"


@pytest.fixture(autouse=True)
def _restore_modules():
    """After each test (and after monkeypatch's undo), drop the fakes a test's imports left in
    sys.modules: the stand-ins and their submodules, the ``None`` entries, the module objects
    without a file. Real packages imported meanwhile stay (re-importing onnx's C++ part would fail)."""
    before = {k: v for k, v in sys.modules.items() if k.split(".")[0] in FAKED}
    yield
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] in FAKED and name not in before:
            file = getattr(mod, "__file__", None) or ""
            if mod is None or not file or STAND_INS in file:
                del sys.modules[name]
    sys.modules.update(before)


@pytest.fixture
def spec(tmp_path: Path) -> str:
    path = tmp_path / "tiny.arch"
    path.write_text(TINY)
    return str(path)


@pytest.fixture
def versions(monkeypatch: pytest.MonkeyPatch):
    """Set the installed versions and torchvision's declared torch: ``versions(torch=..., torchvision=...,
    tv_needs=...)``; a package left out counts as not installed."""

    def set_versions(*, tv_needs: str | None = None, **found: str) -> None:
        monkeypatch.setattr(extras, "installed_version", lambda dist: found.get(dist))
        reqs = {"torchvision": ["numpy", f"torch (=={tv_needs})"]} if tv_needs else {}
        monkeypatch.setattr(extras, "declared_requirements", lambda dist: reqs.get(dist, []))

    return set_versions


def _forget(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Drop ``packages`` and their submodules from ``sys.modules`` (restored after the test)."""
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            monkeypatch.delitem(sys.modules, name)


def _absent(monkeypatch: pytest.MonkeyPatch, *packages: str) -> None:
    """Make ``import PACKAGE`` fail as for a package that is not installed."""
    _forget(monkeypatch, *packages)
    for name in packages:
        monkeypatch.setitem(sys.modules, name, None)


def _stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, str]) -> None:
    """Packages importable from a folder first on ``sys.path``: ``{"torchvision/__init__.py": code}``."""
    root = tmp_path / STAND_INS
    for rel, code in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(code)
    _forget(monkeypatch, *{rel.split("/")[0] for rel in files})
    monkeypatch.syspath_prepend(str(root))


TORCHVISION_OK = {"torchvision/__init__.py": "", "torchvision/models.py": ""}


def _error(err: str) -> str:
    """The diagnostic block of ``err`` (message, hint, notes), checked to be no traceback."""
    assert "Traceback" not in err, err
    return err[err.index("<command line>"):]


# ------------------------------------------------------------------------------------ --check-against


def test_torchvision_missing_next_to_a_cpu_torch(spec, versions, monkeypatch) -> None:
    versions(torch="2.13.0+cpu")
    _absent(monkeypatch, "torchvision")
    rc, out, err = run("compile", spec, "-o", "-", "--check-against", "torchvision:resnet18")
    assert rc == 1
    assert _error(err).splitlines()[:3] == [
        "<command line>:1:1: error[E344]: --check-against torchvision:resnet18: torchvision is not installed",
        f"    = hint: {VENV}",
        "    = note: 'pip install torchvision' here would replace this torch (2.13.0+cpu); the tested set, "
        "torch 2.14.1 + torchvision 0.29.1 + timm + pretrainedmodels (about 5.7 GB), goes in an environment of "
        "its own, made in archdsl's source folder; then run .venv-ref/bin/archdsl"]


def test_torchvision_missing_next_to_a_pypi_torch_names_its_pair(spec, versions, monkeypatch) -> None:
    versions(torch="2.14.1")
    _absent(monkeypatch, "torchvision")
    rc, _, err = run("compile", spec, "--check-against", "torchvision:resnet18")
    assert rc == 1
    assert "    = hint: pip install torchvision==0.29.1\n" in _error(err)


def test_torchvision_built_for_another_torch_build_fails_at_import(spec, versions, monkeypatch, tmp_path) -> None:
    # What PyPI's torchvision 0.28.0 does next to torch 2.13.0+cpu: its C++ ops are not registered.
    versions(torch="2.13.0+cpu", torchvision="0.28.0", tv_needs="2.13.0")
    _stand_in(monkeypatch, tmp_path, {
        "torchvision/__init__.py": "raise RuntimeError('operator torchvision::nms does not exist')\n"})
    rc, _, err = run("compile", spec, "--check-against", "torchvision:resnet18")
    assert rc == 1
    block = _error(err)
    assert block.startswith("<command line>:1:1: error[E344]: --check-against torchvision:resnet18: torchvision "
                            "0.28.0 does not work with torch 2.13.0+cpu: operator torchvision::nms does not exist\n")
    assert f"    = hint: {VENV}\n" in block
    assert "a CPU torch with the CPU torchvision" in block


def test_torchvision_declaring_another_torch_is_caught_before_import(spec, versions, monkeypatch, tmp_path) -> None:
    versions(torch="2.13.0+cpu", torchvision="0.29.1", tv_needs="2.14.1")
    _stand_in(monkeypatch, tmp_path, {"torchvision/__init__.py": "raise AssertionError('imported')\n"})
    rc, _, err = run("compile", spec, "--check-against", "torchvision:resnet18")
    assert rc == 1
    block = _error(err)
    assert block.startswith("<command line>:1:1: error[E344]: --check-against torchvision:resnet18: torchvision "
                            "0.29.1 is built for torch 2.14.1, not the installed torch 2.13.0+cpu\n")
    assert f"    = hint: {VENV}\n" in block


def test_timm_missing_next_to_a_working_torchvision(spec, versions, monkeypatch, tmp_path) -> None:
    versions(torch="2.14.1", torchvision="0.29.1", tv_needs="2.14.1")
    _stand_in(monkeypatch, tmp_path, TORCHVISION_OK)
    _absent(monkeypatch, "timm")
    rc, _, err = run("compile", spec, "--check-against", "timm:inception_v4")
    assert rc == 1
    assert _error(err).splitlines()[:2] == [
        "<command line>:1:1: error[E344]: --check-against timm:inception_v4: timm is not installed",
        "    = hint: pip install timm==1.0.31"]


def test_timm_without_torchvision_reports_torchvision(spec, versions, monkeypatch) -> None:
    versions(torch="2.13.0+cpu")
    _absent(monkeypatch, "torchvision", "timm")
    rc, _, err = run("compile", spec, "--check-against", "timm:inception_v4")
    assert rc == 1
    assert _error(err).splitlines()[:2] == [
        "<command line>:1:1: error[E344]: --check-against timm:inception_v4: torchvision (timm needs it) is not "
        "installed", f"    = hint: {VENV}"]


def test_pretrainedmodels_missing(spec, versions, monkeypatch, tmp_path) -> None:
    versions(torch="2.14.1", torchvision="0.29.1", tv_needs="2.14.1")
    _stand_in(monkeypatch, tmp_path, TORCHVISION_OK)
    _absent(monkeypatch, "pretrainedmodels")
    rc, _, err = run("compile", spec, "--check-against", "pretrainedmodels:bninception")
    assert rc == 1
    assert "error[E344]: --check-against pretrainedmodels:bninception: pretrainedmodels is not installed\n" \
           "    = hint: pip install pretrainedmodels==0.7.4 six\n" in _error(err)


def test_pretrainedmodels_without_six(spec, versions, monkeypatch, tmp_path) -> None:
    # pretrainedmodels imports six without declaring it
    versions(torch="2.14.1", torchvision="0.29.1", tv_needs="2.14.1")
    _stand_in(monkeypatch, tmp_path, {**TORCHVISION_OK, "pretrainedmodels/__init__.py": "import six\n"})
    _absent(monkeypatch, "six")
    rc, _, err = run("compile", spec, "--check-against", "pretrainedmodels:bninception")
    assert rc == 1
    assert _error(err).splitlines()[:2] == [
        "<command line>:1:1: error[E344]: --check-against pretrainedmodels:bninception: pretrainedmodels cannot be "
        "imported: import of six halted; None in sys.modules", "    = hint: pip install six"]


def test_unknown_model_is_a_diagnostic(spec, versions, monkeypatch, tmp_path) -> None:
    versions(torch="2.14.1", torchvision="0.29.1", tv_needs="2.14.1")
    _stand_in(monkeypatch, tmp_path, TORCHVISION_OK)
    rc, _, err = run("compile", spec, "--check-against", "torchvision:resnet9000")
    assert rc == 1
    assert _error(err).startswith("<command line>:1:1: error[E344]: --check-against torchvision:resnet9000: "
                                  "torchvision has no model 'resnet9000'\n")


def test_check_against_prints_progress_then_the_comparison(spec, versions, monkeypatch, tmp_path) -> None:
    # A stand-in torchvision whose model has the tiny spec's architecture and keys.
    versions(torch="2.14.1", torchvision="0.29.1", tv_needs="2.14.1")
    _stand_in(monkeypatch, tmp_path, {"torchvision/__init__.py": "", "torchvision/models.py": (
        "from torch import nn\n"
        "def tiny(weights=None):\n"
        "    m = nn.Sequential()\n"
        "    m.add_module('flatten', nn.Flatten())\n"
        "    m.add_module('fc', nn.Linear(48, 2))\n"
        "    return m\n")})
    rc, _, err = run("compile", spec, "-o", str(tmp_path / "tiny.py"), "--check-against", "torchvision:tiny")
    assert rc == 0, err
    lines = err.splitlines()
    first, second = lines.index("building the reference torchvision:tiny..."), \
        lines.index("comparing (strict load_state_dict, eval outputs, one train-mode step)...")
    assert first < second < lines.index("MATCH")
    rc, _, err = run("compile", spec, "-q", "-o", str(tmp_path / "tiny.py"), "--check-against", "torchvision:tiny")
    assert rc == 0 and "building the reference" not in err


def test_torch_missing_is_a_diagnostic(spec, monkeypatch, tmp_path) -> None:
    from archdsl.backends import runtime

    def no_torch(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(runtime, "load_module", no_torch)
    rc, _, err = run("compile", spec, "--check-against", "torchvision:resnet18")
    assert rc == 1
    assert _error(err).splitlines()[:2] == [
        "<command line>:1:1: error[E341]: --check-against needs PyTorch, which is not installed", f"    = hint: {VENV}"]
    rc, _, err = run("compile", spec, "--target", "onnx", "-o", str(tmp_path / "tiny.onnx"))
    assert rc == 1 and _error(err).splitlines()[:2] == [
        "<command line>:1:1: error[E341]: --target onnx needs PyTorch, which is not installed",
        "    = hint: pip install torch==2.13.0"]


# ------------------------------------------------------------------------------------ --target onnx


def _fake_onnx_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importable stand-ins for onnx, onnxscript and onnxruntime (the export is faked as well)."""
    for name in ("onnx", "onnxscript", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


@pytest.mark.parametrize("missing", ["onnx", "onnxscript", "onnxruntime"])
def test_onnx_package_missing(spec, monkeypatch, tmp_path, missing) -> None:
    _fake_onnx_packages(monkeypatch)
    monkeypatch.setitem(sys.modules, missing, None)
    out = tmp_path / "tiny.onnx"
    rc, _, err = run("compile", spec, "--target", "onnx", "-o", str(out))
    assert rc == 1 and not out.exists()
    assert _error(err).splitlines()[:3] == [
        f"<command line>:1:1: error[E342]: --target onnx needs {missing}, which is not installed",
        f"    = hint: {ONNX_PIP}",
        "    = note: the onnx extra: torch.onnx.export needs onnxscript; onnx.checker and onnxruntime check the "
        "result"]
    assert "exporting to ONNX" not in err  # found before the export starts


def test_onnxscript_that_fails_to_import(spec, monkeypatch, tmp_path) -> None:
    _fake_onnx_packages(monkeypatch)
    _stand_in(monkeypatch, tmp_path, {"onnxscript/__init__.py": "raise AttributeError(\"module 'onnx' has no "
                                                                "attribute 'TensorProto'\")\n"})
    monkeypatch.setattr(extras, "installed_version", {"onnxscript": "0.1.0", "torch": "2.13.0+cpu"}.get)
    rc, _, err = run("compile", spec, "--target", "onnx", "-o", str(tmp_path / "tiny.onnx"))
    assert rc == 1
    block = _error(err)
    assert block.startswith("<command line>:1:1: error[E342]: --target onnx: onnxscript 0.1.0 cannot be imported "
                            "here: module 'onnx' has no attribute 'TensorProto'\n")
    assert f"    = hint: {ONNX_PIP}\n" in block and "work with torch 2.13.0+cpu" in block


def test_onnxscript_import_failing_inside_the_exporter(spec, monkeypatch, tmp_path) -> None:
    _fake_onnx_packages(monkeypatch)

    def export(*args, **kwargs):
        raise ImportError("cannot import name 'ir' from 'onnxscript'", name="onnxscript")

    monkeypatch.setattr(torch.onnx, "export", export)
    monkeypatch.setattr(extras, "installed_version", {"onnxscript": "0.1.0", "torch": "2.13.0+cpu"}.get)
    rc, _, err = run("compile", spec, "--target", "onnx", "-o", str(tmp_path / "tiny.onnx"))
    assert rc == 1
    assert err.splitlines()[0] == "exporting to ONNX (torch.onnx.export, dynamo)..."
    assert _error(err).splitlines()[:2] == [
        "<command line>:1:1: error[E342]: --target onnx: onnxscript 0.1.0 cannot be imported here: cannot import "
        "name 'ir' from 'onnxscript'", f"    = hint: {ONNX_PIP}"]


def test_onnx_export_prints_progress_and_hides_the_exporters_noise(spec, tmp_path) -> None:
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    out = tmp_path / "tiny.onnx"
    rc, stdout, err = run("compile", spec, "--target", "onnx", "-o", str(out))
    assert rc == 0, err
    assert stdout == ""
    lines = err.splitlines()
    assert lines[:3] == ["exporting to ONNX (torch.onnx.export, dynamo)...", "checking with onnx.checker...",
                         "comparing with onnxruntime..."]
    assert lines[-1].startswith(f"wrote {out} (") and "onnx.checker ok" in lines[-1]
    assert all(line.endswith("(--verbose shows them)") or line.endswith("(--verbose shows it)")
               for line in lines[3:-1]), err
    assert out.stat().st_size > 0
    rc, _, err = run("compile", spec, "-q", "--target", "onnx", "-o", str(out))
    assert rc == 0 and err == "", err


def test_captured_collects_warnings_logs_and_prints(capsys) -> None:
    from archdsl.backends.onnx_export import _captured

    logger = logging.getLogger("torch.onnx._archdsl_test")
    stream = logging.StreamHandler(sys.stderr)
    logger.addHandler(stream)
    sink: list[str] = []
    try:
        with _captured(sink):
            warnings.warn("deprecated thing", FutureWarning, stacklevel=1)
            logger.warning("torchvision is not installed. Skipping torchvision::nms")
            print("[torch.onnx] Obtain model graph")
    finally:
        logger.removeHandler(stream)
    assert capsys.readouterr() == ("", "")
    assert sorted(sink) == ["FutureWarning: deprecated thing",
                            "warning: torchvision is not installed. Skipping torchvision::nms"]
    logger.addHandler(stream)
    try:
        logger.warning("after")  # the handler prints again once the export is over
    finally:
        logger.removeHandler(stream)
    assert "after" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the extras themselves


def test_pyproject_extras_are_the_verified_sets() -> None:
    tomllib = pytest.importorskip("tomllib")
    extras_declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert tuple(extras_declared["onnx"]) == extras.ONNX
    assert tuple(extras_declared["reference"]) == extras.REFERENCE
    assert tuple(extras_declared["train"]) == extras.TRAIN


@pytest.mark.parametrize(("torch_version", "torchvision"), [
    ("2.14.1", "0.29.1"), ("2.13.0", "0.28.0"), ("2.1.2", "0.16.2"),
    ("2.13.0+cpu", None), ("2.0.1", None), ("2.15.0.dev20260101", None), (None, None)])
def test_torchvision_for(torch_version, torchvision) -> None:
    assert extras.torchvision_for(torch_version) == torchvision


def test_reference_pair_is_consistent() -> None:
    pins = dict(r.split("==") for r in extras.REFERENCE if "==" in r)
    assert extras.torchvision_for(pins["torch"]) == pins["torchvision"]
