"""ONNX export of a compiled module (``archdsl compile --target onnx``).

``onnx`` (and, for the numerical check, ``onnxruntime``) are optional extras: ``pip install
archdsl[onnx]``.  The export goes through ``torch.onnx.export`` (the ``torch.export``-based
exporter), the result is checked with ``onnx.checker`` and, when onnxruntime is installed,
run on a random input and compared with PyTorch.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass


class OnnxUnavailable(RuntimeError):
    """The optional ``onnx`` package is not installed."""


@dataclass
class OnnxResult:
    """The serialized model and what was verified about it."""

    data: bytes
    checked: bool
    max_abs_diff: float | None  # against PyTorch, None without onnxruntime


def export_onnx(model, input_shape: tuple[int, ...], *, batch: int = 1, opset: int | None = None,
                verify: bool = True, quiet: bool = True) -> OnnxResult:
    """Export ``model`` (put in eval mode) for inputs ``batch x input_shape``; return the bytes."""
    import torch

    try:
        import onnx
    except ImportError as exc:
        raise OnnxUnavailable("ONNX export needs the 'onnx' package: pip install onnx onnxruntime") from exc
    model.eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *input_shape, generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
            prog = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, external_data=False,
                                     input_names=["input"], output_names=["logits"])
            prog.save(path, external_data=False)
        proto = onnx.load(path)
        onnx.checker.check_model(proto, full_check=True)
        with open(path, "rb") as fh:
            data = fh.read()
    diff = None
    if verify:
        try:
            import numpy as np  # noqa: F401  (onnxruntime needs numpy)
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            (out,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            with torch.no_grad():
                ref = model(x)
            diff = float((torch.from_numpy(out) - ref).abs().max())
    return OnnxResult(data, True, diff)
