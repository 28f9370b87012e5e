"""archdsl: a declarative architecture language and compiler for convolutional networks."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "build", "load_spec", "compile_source", "fold_bn", "BuildError"]

# The PyTorch backend is imported on first use: ``import archdsl`` (and ``archdsl check``) never
# imports torch.
_RUNTIME_NAMES = frozenset({"build", "load_spec", "compile_source", "BuildError"})


def __getattr__(name: str):
    """Load the torch-backed public API lazily (PEP 562)."""
    if name in _RUNTIME_NAMES:
        from .backends import runtime

        value = runtime.__dict__[name]
    elif name == "fold_bn":
        from .backends.foldbn import fold_bn as value
    else:
        raise AttributeError(f"module 'archdsl' has no attribute {name!r}")
    globals()[name] = value
    return value
