"""The settings of one ``archdsl train`` job (no torch here: the CLI builds it before importing torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Default learning rates when ``--lr`` is not given (specs declare no optimizer settings).
DEFAULT_LR = {"sgd": 0.1, "adamw": 1e-3}
#: Default weight decay per optimizer (not applied to norm weights and biases).
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}


@dataclass(frozen=True)
class TrainConfig:
    """One training job: the spec, the data folder, the run folder and every knob of the loop.

    ``lr`` and ``weight_decay`` default (None) to the optimizer's usual values
    (:data:`DEFAULT_LR`, :data:`DEFAULT_WEIGHT_DECAY`); ``device`` None picks CUDA when available;
    ``params`` are the spec's ``-p`` overrides; ``ema`` is the decay of an exponential moving
    average of the weights (evaluated and checkpointed when given).
    """

    spec: str
    data: str
    out: str
    epochs: int = 10
    batch: int = 64
    lr: float | None = None
    opt: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None
    warmup_epochs: float = 1.0
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    device: str | None = None
    workers: int = 2
    resume: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    ema: float | None = None
    seed: int = 0
    fsdp: bool = False
    search_paths: tuple[str, ...] = ()
    stop_after: int | None = None  # stop after this many epochs (last.pt resumes the N-epoch schedule)
    progress: bool | None = None  # None: a rich progress bar when stderr is a terminal

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.opt]

    @property
    def decay(self) -> float:
        """``weight_decay``, or the optimizer's default."""
        return self.weight_decay if self.weight_decay is not None else DEFAULT_WEIGHT_DECAY[self.opt]
