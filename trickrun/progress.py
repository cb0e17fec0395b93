"""What `trickrun train` shows while it trains, on stderr: a rich display on a terminal (bars
and epoch lines fitted to its width), one plain line per epoch otherwise, nothing with --quiet.
The training loop calls `start`, `batch` and `epoch`; the display decides how often to redraw."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import Progress

from .display import QuietOnFailure, bar_columns, fitted_line, info_room
from .errors import ConfigError
from .train import NullReporter
from .userinput import short


def epoch_line(record: dict, epochs: int, width: int | None = None) -> str:
    """One line per finished epoch; with a `width`, the parts that matter least (the gradient
    norm, then the learning rate, the training loss and accuracy, the time) are left out until
    the line fits it; the epoch and the validation numbers always stay (wrapping if they must)."""
    parts = [  # (kept while it fits: lower first, text)
        (0, f"epoch {record['epoch']:>3}/{epochs}"),
        (4, f"lr {record['lr']:.3g}"),
        (3, f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}"),
        (0, f"val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}"),
        (5, f"grad {record['grad_norm']:.3g}"),
        (2, f"{record['epoch_s']:.1f}s"),
    ]
    return fitted_line(parts, width)


class PlainReporter(NullReporter):
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.epochs = 0

    def start(self, *, epochs: int, batches: int, run_dir) -> None:
        self.epochs = epochs
        print(f"run directory: {run_dir}", file=self.stream, flush=True)

    def epoch(self, record: dict) -> None:
        print(epoch_line(record, self.epochs), file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class RichReporter(NullReporter):
    """Epoch and batch bars with live loss and accuracy and time left; redrawn at most
    ten times a second so that drawing never slows training."""

    REDRAW_S = 0.1
    # The batch row's numbers at their usual width: the live numbers are padded to it (as the
    # room allows), so that the bars keep their length from frame to frame and epoch to epoch.
    INFO_WIDTH = len("loss 0.0000  acc 0.0000")

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(*bar_columns(), console=self.console, transient=True, expand=True)
        self._last_draw = 0.0
        self._loss = self._correct = self._seen = 0

    def start(self, *, epochs: int, batches: int, run_dir) -> None:
        self.epochs = epochs
        self._widest = (f"epoch {epochs}", max(epochs, batches))  # the info column's both rows share
        self.console.print(f"run directory: {run_dir}", markup=False, highlight=False)
        self.epoch_task = self.progress.add_task("epochs", total=epochs, info=self._fit([]))
        self.batch_task = self.progress.add_task("batches", total=batches, info=self._fit([]))
        self.progress.start()

    def batch(self, epoch: int, index: int, loss: float, correct: int, size: int) -> None:
        self._loss += loss * size
        self._correct += correct
        self._seen += size
        now = time.monotonic()
        if now - self._last_draw >= self.REDRAW_S:
            self._last_draw = now
            info = self._fit([(1, f"loss {self._loss / self._seen:.4f}"),
                              (2, f"acc {self._correct / self._seen:.4f}")])
            self.progress.update(self.batch_task, completed=index, info=info,
                                 description=f"epoch {epoch}")

    def note(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def epoch(self, record: dict) -> None:
        self._loss = self._correct = self._seen = 0
        self.progress.console.print(epoch_line(record, self.epochs, self.console.width))
        self.progress.update(self.epoch_task, completed=record["epoch"],
                             info=self._fit([(1, f"val acc {record['val_acc']:.4f}")]))
        self.progress.reset(self.batch_task, info=self._fit([]))

    def _fit(self, parts: list[tuple[int, str]]) -> str:
        """The live numbers that fit beside the bar (none below about 45 columns), padded to
        the width the bars keep."""
        room = info_room(self.console.width, *self._widest)
        return fitted_line(parts, room).ljust(min(room, self.INFO_WIDTH))

    def close(self) -> None:
        self.progress.stop()


def make_reporter(mode: str):
    """`quiet` | `plain` | `rich` | `auto` (rich on a terminal, plain otherwise)."""
    reporters = {"quiet": NullReporter, "plain": PlainReporter, "rich": RichReporter}
    if mode == "auto":
        mode = "rich" if sys.stderr.isatty() else "plain"
    if mode not in reporters:  # from the Python API: the CLI's flags give only these
        raise ConfigError(f"progress: unknown mode {short(mode)}; choose one of: auto, {', '.join(reporters)}")
    return QuietOnFailure(reporters[mode]())
