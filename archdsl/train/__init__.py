"""``archdsl train``: train a spec on an ImageFolder, on the CPU, one GPU or many (torchrun).

Importing this package imports no torch: :mod:`archdsl.train.cli` registers the subcommand cheaply
and :func:`run` imports torch, torchvision and PIL when a job starts.
"""

from __future__ import annotations

from .config import TrainConfig


def run(cfg: TrainConfig) -> int:
    """Run one training job (see :func:`archdsl.train.loop.run`)."""
    from .loop import run as _run

    return _run(cfg)


__all__ = ["TrainConfig", "run"]
