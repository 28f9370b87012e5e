"""The optional packages behind ``--check-against`` and ``--target onnx``, and the fix for each problem.

pyproject.toml declares the same requirement lists as the extras ``reference``, ``onnx`` and ``train``
(tests/test_extras.py checks that they agree). The versions are the ones verified: torch 2.14.1 with
torchvision 0.29.1, timm 1.0.31 and pretrainedmodels 0.7.4 (the zoo's exactness figures); onnx
1.23.1-1.23.2, onnxruntime 1.30-1.32 and onnxscript 0.7.2 with torch 2.13.0 (CPU) and 2.14.1.

A missing or mismatched package becomes an :class:`ExtraUnavailable`: a message, the exact command
that fixes it (``hint``) and why (``note``), which the CLI prints as a located diagnostic. Nothing
here imports torch or the optional packages; versions come from the installed distributions' metadata.
"""

from __future__ import annotations

import re
import shlex
from importlib import metadata

#: ``pip install 'archdsl[onnx]'``: torch.onnx.export (dynamo) needs onnxscript, the check needs onnx
#: and onnxruntime. Bounded where a new release may change what torch's exporter imports.
ONNX = ("onnx>=1.23.1,<2", "onnxruntime>=1.30", "onnxscript>=0.7.2,<0.8")
#: ``pip install 'archdsl[reference]'``: the reference implementations of ``--check-against``, with the
#: torch they were measured with (torchvision pins torch exactly; pretrainedmodels imports six undeclared).
REFERENCE = ("torch==2.14.1", "torchvision==0.29.1", "timm==1.0.31", "pretrainedmodels==0.7.4", "six")
#: ``pip install 'archdsl[train]'``: ``archdsl train`` (torchvision's datasets and transforms, Pillow), with
#: the torch/torchvision pair it was tested with (the reference pair: torchvision pins torch exactly).
TRAIN = ("torch==2.14.1", "torchvision==0.29.1", "pillow>=10")
#: The reference set in an environment of its own, so that it does not replace the main one's torch.
REFERENCE_VENV = "python3 -m venv .venv-ref && .venv-ref/bin/pip install --no-cache-dir '.[reference]'"
REFERENCE_VENV_NOTE = ("the tested set, torch 2.14.1 + torchvision 0.29.1 + timm + pretrainedmodels (about 5.7 GB), "
                       "goes in an environment of its own, made in archdsl's source folder; then run "
                       ".venv-ref/bin/archdsl")


#: Import names whose distribution is named otherwise.
_DISTRIBUTIONS = {"PIL": "pillow", "yaml": "PyYAML"}


class ExtraUnavailable(RuntimeError):
    """An optional package is missing or does not work with the installed torch."""

    def __init__(self, message: str, hint: str = "", note: str = "") -> None:
        super().__init__(message)
        self.message, self.hint, self.note = message, hint, note


def pip_command(requirements: tuple[str, ...] | list[str]) -> str:
    """``pip install REQ ...``, each requirement quoted for a POSIX shell where it needs it."""
    return "pip install " + " ".join(shlex.quote(r) for r in requirements)


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def declared_requirements(dist: str) -> list[str]:
    """The ``Requires-Dist`` lines of installed distribution ``dist`` (none when it is not installed)."""
    try:
        return list(metadata.requires(dist) or [])
    except metadata.PackageNotFoundError:
        return []


def torchvision_for(torch_version: str | None) -> str | None:
    """The torchvision release built for a PyPI torch release (2.N.P -> 0.(N+15).P, since torch 2.1).

    None for a local build (``2.13.0+cpu``: its torchvision comes from the same index, as ``+cpu``),
    a pre-release or an unknown version: there is no PyPI torchvision to name then.
    """
    m = re.fullmatch(r"2\.(\d+)\.(\d+)", torch_version or "")
    if not m or int(m.group(1)) < 1:
        return None
    return f"0.{int(m.group(1)) + 15}.{m.group(2)}"


def onnx_problem(module: str, exc: BaseException | None = None) -> ExtraUnavailable:
    """``--target onnx`` cannot run because ``module`` is missing or fails to import (``exc``)."""
    hint = pip_command(ONNX)
    note = "the onnx extra: torch.onnx.export needs onnxscript; onnx.checker and onnxruntime check the result"
    if exc is None or (isinstance(exc, ImportError) and _is_absent(exc, module)):
        return ExtraUnavailable(f"--target onnx needs {module}, which is not installed", hint, note)
    version = installed_version(module)
    what = f"{module} {version}" if version else module
    return ExtraUnavailable(f"--target onnx: {what} cannot be imported here: {_first_line(exc)}", hint,
                            f"{note}; this command installs versions that work with torch "
                            f"{installed_version('torch') or '(not installed)'}")


def reference_problem(pkg: str, exc: BaseException | None, *, needed_by: str = "") -> ExtraUnavailable:
    """``--check-against`` cannot use package ``pkg``: not installed (``exc`` None or an ImportError
    for it), a dependency missing, or built for another torch (``operator torchvision::nms does not
    exist``). ``needed_by``: the package the user asked for, when ``pkg`` is its dependency."""
    torch_version = installed_version("torch")
    subject = f"{pkg} ({needed_by} needs it)" if needed_by else pkg
    if exc is None or (isinstance(exc, ImportError) and _is_absent(exc, pkg)):
        return ExtraUnavailable(f"{subject} is not installed", *_install_hint(pkg, torch_version))
    dep = (exc.name or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    if dep and dep != "torch":  # a dependency the package did not bring (pretrainedmodels: six)
        return ExtraUnavailable(f"{subject} cannot be imported: {_first_line(exc)}",
                                pip_command([_DISTRIBUTIONS.get(dep, dep)]), f"{pkg} needs {dep}")
    mine = installed_version(pkg)
    named = f"{pkg} {mine}" if mine else pkg
    return ExtraUnavailable(
        f"{named}{f' ({needed_by} needs it)' if needed_by else ''} does not work with torch {torch_version}: "
        f"{_first_line(exc)}",
        REFERENCE_VENV,
        "torch and torchvision must come from the same release and the same build (torch 2.N.P goes with "
        "torchvision 0.(N+15).P, a CPU torch with the CPU torchvision); " + REFERENCE_VENV_NOTE)


def train_problem(module: str, exc: BaseException | None) -> ExtraUnavailable:
    """``archdsl train`` cannot import ``module`` (``torch``, ``torchvision`` or ``PIL``): missing, or
    torchvision built for another torch. The hint keeps an installed torch where a matching torchvision
    exists on PyPI, else installs the train extra (no torch yet) or the tested set in an environment of its
    own (a local torch build, ``2.13.0+cpu``, or a mismatch)."""
    torch_version = installed_version("torch")
    if module == "torch":
        if torch_version is None:
            return ExtraUnavailable("PyTorch is not installed", pip_command([".[train]"]),
                                    "the train extra, installed from archdsl's source folder: " + ", ".join(TRAIN)
                                    + " (the tested pair)")
        return ExtraUnavailable(f"torch {torch_version} cannot be imported: {_first_line(exc) if exc else 'import failed'}",
                                REFERENCE_VENV, REFERENCE_VENV_NOTE)
    if module == "PIL":
        absent = exc is None or (isinstance(exc, ImportError) and _is_absent(exc, "PIL"))
        return ExtraUnavailable("Pillow (PIL) is not installed" if absent else
                                f"Pillow cannot be imported: {_first_line(exc)}",
                                pip_command(["pillow"] if absent else ["--force-reinstall", "pillow"]),
                                "torchvision reads images with Pillow")
    return reference_problem(module, exc)


def torchvision_mismatch() -> ExtraUnavailable | None:
    """An :class:`ExtraUnavailable` when the installed torchvision declares another torch than the
    installed one (found in the metadata, before an import that may fail obscurely), else None."""
    torch_version, tv_version = installed_version("torch"), installed_version("torchvision")
    if torch_version is None or tv_version is None:
        return None
    for req in declared_requirements("torchvision"):
        m = re.fullmatch(r"torch\s*\(?==\s*([\w.]+)\)?", req.strip())
        if m and m.group(1) != torch_version.split("+")[0]:
            return ExtraUnavailable(
                f"torchvision {tv_version} is built for torch {m.group(1)}, not the installed torch {torch_version}",
                REFERENCE_VENV, "pip installs torchvision with the torch it was built for; " + REFERENCE_VENV_NOTE)
    return None


def _install_hint(pkg: str, torch_version: str | None) -> tuple[str, str]:
    """(command, why) that installs ``pkg`` without replacing the installed torch, where one can."""
    pinned = dict(r.split("==") for r in REFERENCE if "==" in r)
    tv_installed = installed_version("torchvision")
    if pkg == "torchvision" and torchvision_for(torch_version):
        return (pip_command([f"torchvision=={torchvision_for(torch_version)}"]),
                f"the torchvision built for this torch {torch_version}; a plain 'pip install torchvision' "
                "installs the newest and replaces torch with the one it was built for")
    if pkg != "torchvision" and tv_installed and torchvision_mismatch() is None:
        extra = ["six"] if pkg == "pretrainedmodels" else []
        return (pip_command([f"{pkg}=={pinned[pkg]}", *extra]),
                f"keeps the installed torch {torch_version} and torchvision {tv_installed}")
    why = f"'pip install {pkg}' here would replace this torch ({torch_version})" if torch_version else \
        "PyTorch is not installed here"
    return REFERENCE_VENV, f"{why}; {REFERENCE_VENV_NOTE}"


def _is_absent(exc: ImportError, module: str) -> bool:
    """True when ``exc`` says ``module`` itself (or a submodule of it) is not installed; False for a
    name it lacks (``cannot import name 'ir' from 'onnxscript'``: a version that does not fit)."""
    name = exc.name or ""
    return isinstance(exc, ModuleNotFoundError) and (name == module or name.startswith(module + "."))


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a traceback's last line, without the type)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
