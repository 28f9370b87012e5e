"""Progress output of ``archdsl train``: a rich progress bar on a terminal, one plain line per epoch.

rich is imported only when a bar is shown (a terminal), so plain runs and tests do not need it.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def epoch_line(m: dict[str, Any], epochs: int) -> str:
    """``epoch 3/10  train_loss 0.412  val_loss 0.380  val_top1 0.912  val_top5 1.000  lr 0.0500  1234 img/s  4.1 s``."""
    return (f"epoch {m['epoch']}/{epochs}  train_loss {m['train_loss']:.3f}  val_loss {m['val_loss']:.3f}  "
            f"val_top1 {m['val_top1']:.3f}  val_top5 {m['val_top5']:.3f}  lr {m['lr']:.4f}  "
            f"{m['img_per_s']:.0f} img/s  {m['seconds']:.1f} s")


class Progress:
    """Reports one process's training: per step on a bar (TTY), per epoch as a line.

    ``enabled`` False (ranks other than 0) prints nothing; ``bar`` None shows a bar when ``stream``
    is a terminal.
    """

    def __init__(self, epochs: int, *, enabled: bool = True, bar: bool | None = None,
                 stream: TextIO | None = None, lines: TextIO | None = None) -> None:
        self.epochs, self.enabled = epochs, enabled
        self.stream = stream or sys.stderr
        self.lines = lines or sys.stdout
        self.use_bar = enabled and (self.stream.isatty() if bar is None else bar)
        self._rich: Any = None
        self._task: Any = None
        self._images, self._start = 0, time.perf_counter()

    def start_epoch(self, epoch: int, steps: int) -> None:
        """Begin epoch ``epoch`` (1-based) of ``steps`` steps."""
        self._images, self._start = 0, time.perf_counter()
        if not self.use_bar:
            return
        if self._rich is None:
            self._rich = _make_bar(self.stream)
            self._rich.start()
        self._task = self._rich.add_task(f"epoch {epoch}/{self.epochs}", total=steps, loss=float("nan"),
                                         ips=0.0)

    def step(self, loss: float, images: int) -> None:
        """One optimizer step done on ``images`` images (this process) with loss ``loss``."""
        if not self.use_bar or self._task is None:
            return
        self._images += images
        ips = self._images / max(time.perf_counter() - self._start, 1e-9)
        self._rich.update(self._task, advance=1, loss=loss, ips=ips)

    def end_epoch(self, metrics: dict[str, Any]) -> None:
        """Epoch finished and evaluated: drop its bar and print its line."""
        if not self.enabled:
            return
        if self._rich is not None and self._task is not None:
            self._rich.remove_task(self._task)
            self._task = None
        text = epoch_line(metrics, self.epochs)
        if self._rich is not None:
            self._rich.console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            print(text, file=self.lines, flush=True)

    def close(self) -> None:
        """Stop the bar (also after an error or Ctrl-C)."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def _make_bar(stream: TextIO):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    return Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("{task.fields[ips]:.0f} img/s"),
               TextColumn("ETA"), TimeRemainingColumn(), console=Console(file=stream), transient=False)
