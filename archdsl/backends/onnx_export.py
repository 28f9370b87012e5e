"""ONNX export of a compiled module (``archdsl compile --target onnx``).

``onnx``, ``onnxscript`` (which ``torch.onnx.export`` needs) and ``onnxruntime`` (the numerical
check) are the optional extra ``onnx``: ``pip install '.[onnx]'`` in archdsl's source folder.  They
are imported before the export starts, so a missing one is reported at once.  The export goes
through ``torch.onnx.export`` (the ``torch.export``-based exporter), the result is checked with
``onnx.checker`` and run by onnxruntime on a random input and compared with PyTorch.  What the
exporter prints, logs and warns is captured (and counted) unless the caller asks to see it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .extras import ExtraUnavailable, onnx_problem


class OnnxUnavailable(ExtraUnavailable):
    """An optional ONNX package (onnx, onnxscript, onnxruntime) is missing or does not import."""


@dataclass
class OnnxResult:
    """The serialized model and what was verified about it."""

    data: bytes
    checked: bool
    max_abs_diff: float | None  # against PyTorch, None when not verified
    hidden: list[str] = field(default_factory=list)  # the exporter's warnings and log messages, captured


def export_onnx(model, input_shape: tuple[int, ...], *, batch: int = 1, opset: int | None = None,
                verify: bool = True, quiet: bool = True,
                progress: Callable[[str], None] | None = None) -> OnnxResult:
    """Export ``model`` (put in eval mode) for inputs ``batch x input_shape``; return the bytes.

    ``quiet`` captures what torch and onnxscript print, log and warn (``OnnxResult.hidden`` lists the
    distinct messages); ``progress`` is called with a line before each long phase.  Raises
    :class:`OnnxUnavailable` when a package is missing or fails to import, even inside the exporter.
    """
    import torch

    onnx, ort = require_packages(verify)
    say = progress or (lambda _line: None)
    model.eval()
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(0))
    hidden: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        say("exporting to ONNX (torch.onnx.export, dynamo)...")
        with _captured(hidden) if quiet else contextlib.nullcontext():
            try:
                prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, external_data=False,
                                         input_names=["input"], output_names=["logits"])
            except ImportError as exc:  # an onnxscript (or onnx) that torch's exporter cannot use
                raise _unavailable(onnx_problem((exc.name or "onnxscript").split(".")[0], exc)) from exc
            prog.save(path, external_data=False)
        say("checking with onnx.checker...")
        onnx.checker.check_model(onnx.load(path), full_check=True)
        with open(path, "rb") as fh:
            data = fh.read()
    diff = None
    if ort is not None:
        say("comparing with onnxruntime...")
        diff = _compare_with_onnxruntime(ort, data, model, x)
    return OnnxResult(data, True, diff, list(dict.fromkeys(hidden)))


def require_packages(verify: bool = True):
    """Import onnx, onnxscript and (with ``verify``) onnxruntime; return (onnx, onnxruntime or None).

    Raises :class:`OnnxUnavailable`, with the command that installs a working set, for the first
    that is missing or fails to import."""
    module = "onnx"  # the one being imported, for the message
    try:
        import onnx

        module = "onnxscript"
        import onnxscript  # noqa: F401

        module = "onnxruntime"
        if not verify:
            return onnx, None
        import onnxruntime
    except Exception as exc:  # noqa: BLE001 (a package that fails to import is reported, never a traceback)
        raise _unavailable(onnx_problem(module, exc)) from exc
    return onnx, onnxruntime


def _unavailable(problem: ExtraUnavailable) -> OnnxUnavailable:
    return OnnxUnavailable(problem.message, problem.hint, problem.note)


def _compare_with_onnxruntime(ort, data: bytes, model, x) -> float:
    """Run the serialized model on ``x`` with onnxruntime's CPU provider; max |diff| against ``model``."""
    import torch

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: its warnings are about graph optimizations, not results
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref = model(x)
    return float((torch.from_numpy(out) - ref).abs().max())


class _Collect(logging.Filter):
    """A handler filter that keeps each record's message instead of letting the handler print it."""

    def __init__(self, sink: list[str]) -> None:
        super().__init__()
        self.sink = sink
        self.seen: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record not in self.seen:  # a record reaches each handler up the logger tree: keep it once
            self.seen.append(record)
            if record.getMessage().strip():  # torch logs empty debug records too
                self.sink.append(f"{record.levelname.lower()}: {record.getMessage()}")
        return False


@contextlib.contextmanager
def _captured(sink: list[str]) -> Iterator[None]:
    """Collect into ``sink`` what the exporter warns (``warnings``), logs (torch gives its loggers
    handlers of their own, so a filter goes on every handler) and prints on stdout."""
    handlers = {id(h): h for lg in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
                if isinstance(lg, logging.Logger) for h in lg.handlers}.values()
    flt = _Collect(sink)
    for h in handlers:
        h.addFilter(flt)
    try:
        # record=True keeps the filters in force: what is recorded is what would have been printed
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
            try:
                yield
            finally:
                sink.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        for h in handlers:
            h.removeFilter(flt)
