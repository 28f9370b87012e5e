"""Shape rules against torch, for the hypothesis tests of every op (test_shapes, test_ops_modern)."""

from __future__ import annotations

from archdsl.ops import OPS, ShapeError, normalize


def infer(op: str, given_args: dict, shape: tuple) -> tuple | ShapeError:
    """archdsl's output shape for one op (its layout kept), or the ShapeError it raises."""
    spec = OPS[op]
    args = {}
    for p in spec.params:
        value = given_args.get(p.name, p.default)
        args[p.name] = normalize(p, value) if value is not None else None
    try:
        return spec.shape(args, [shape])
    except ShapeError as exc:
        return exc


def torch_shape(fn) -> tuple | None:
    """Torch's output shape (without the batch dimension), or None when torch refuses."""
    import torch

    try:
        with torch.no_grad():
            out = fn()
    except (RuntimeError, ValueError, IndexError):  # IndexError: a chunk or split piece that is not there
        return None
    return tuple(out.shape[1:])


def agree(ours, theirs) -> None:
    """archdsl infers torch's shape, and refuses exactly what torch refuses."""
    if theirs is None:
        assert isinstance(ours, ShapeError), f"torch refuses but archdsl infers {ours}"
    else:
        assert not isinstance(ours, ShapeError), f"archdsl says {ours.code} {ours.message}; torch gives {theirs}"
        assert tuple(ours) == theirs
