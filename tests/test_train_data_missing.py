"""``archdsl train`` where torchvision is not installed (the main environment: torch 2.13.0+cpu alone):
require_vision() is the located E360 diagnostic with the command that installs a working set, and the
data module imports without torchvision or Pillow. Skipped where torchvision is installed (the
faked variants of every case run in tests/test_train_data.py)."""

from __future__ import annotations

import importlib.util

import pytest

from archdsl.backends import extras
from archdsl.diagnostics import Loc, format_text
from archdsl.train import data

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                                reason="torchvision is installed here")


def _expected_hint() -> str:
    torch_version = extras.installed_version("torch")
    if torch_version is None:
        return "pip install '.[train]'"
    pair = extras.torchvision_for(torch_version)
    return f"pip install torchvision=={pair}" if pair else extras.REFERENCE_VENV


def test_require_vision_names_the_install_command() -> None:
    with pytest.raises(data.DataError) as info:
        data.require_vision()
    diag = info.value.diagnostic
    assert (diag.code, diag.loc, diag.hint) == ("E360", Loc("<command line>", 1, 1), _expected_hint())
    expected = "PyTorch is not installed" if extras.installed_version("torch") is None else "torchvision is not installed"
    assert diag.message == f"archdsl train: {expected}"
    text = format_text(diag)
    assert text.startswith(f"<command line>:1:1: error[E360]: archdsl train: {expected}\n")
    assert "Traceback" not in text


def test_open_imagefolder_stops_at_the_packages_first(tmp_path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(data.DataError) as info:
        data.open_imagefolder(str(tmp_path), (3, 8, 8))
    assert info.value.diagnostic.code == "E360"
