"""How the CLI shows the progress events library code reports.

Library code calls a :data:`synthaug.progress.ProgressCallback`; a command wraps its work in
:func:`progress_reporter` and passes the callback it yields. On a terminal that draws one rich
bar per stage (done/total, rate, elapsed, ETA). Anywhere else — a batch job, ``nohup``, CI, a
pipe into ``tee`` — a redrawn bar is either invisible or garbage, so it prints one plain line
per finished item and per finished stage (what, how long, how many are left, ETA), whole lines
with no carriage returns, flushed at once so a log file shows where a run is.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from synthaug.cli._console import make_console
from synthaug.progress import ProgressCallback, ProgressEvent

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PlainProgressPrinter", "format_duration", "progress_reporter"]


def format_duration(seconds: float) -> str:
    """``"4.2s"``, ``"3m05s"`` or ``"2h07m"``: short, and the same width class in every line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class _StageClock:
    started: float
    last_line: float  # when this stage last printed an item line (its start at first)
    done_at_last_line: int = 0
    done_at_start: int = 0  # items a resumed stage had already finished before this run


class PlainProgressPrinter:
    """A progress callback that writes one plain line per finished item and stage.

    Lines look like ``[train] 3/10 epochs (epoch 3) in 1.2s; elapsed 3.9s, 7 left, ETA 9.1s``
    and ``[train] finished: 10 epochs in 12.8s``. Items that finish faster than
    ``min_interval_s`` after the previous line of their stage are folded into the next line
    (a stage of 2,000 feature batches prints a line every few seconds, not 2,000 lines); the
    first item (it gives the first ETA), the last item and the end of a stage always print.

    Args:
        stream: Where lines go (stderr by default, so a command's stdout stays its result).
        min_interval_s: Least time between two item lines of one stage.
        clock: Seconds from an arbitrary origin (tests pass a fake clock).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        min_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._stages: dict[str, _StageClock] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            line = self._line(event)
        if line is not None:
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write(line + "\n")
            stream.flush()

    def _line(self, event: ProgressEvent) -> str | None:
        now = self.clock()
        stage = self._stages.get(event.stage)
        if event.done == 0 and not event.finished:
            # A stage that starts (again: the next unit's training) gets a fresh clock.
            self._stages[event.stage] = _StageClock(started=now, last_line=now)
            total = f" ({event.total} {event.unit})" if event.total is not None else ""
            item = f": {event.item}" if event.item else ""
            return f"[{event.stage}] started{total}{item}"
        if stage is None and not event.finished:
            # A resumed stage starts with items already done; rates and ETA count from here.
            self._stages[event.stage] = _StageClock(now, now, event.done, event.done)
            total = f"/{event.total}" if event.total is not None else ""
            return f"[{event.stage}] resumed at {event.done}{total} {event.unit}"
        if stage is None:
            return f"[{event.stage}] finished: {event.done} {event.unit}"
        elapsed = now - stage.started
        if event.finished:
            del self._stages[event.stage]
            return f"[{event.stage}] finished: {event.done} {event.unit} in {format_duration(elapsed)}"
        finished_now = event.done - stage.done_at_last_line
        if finished_now <= 0:
            return None  # a status update without a newly finished item
        last_item = event.total is not None and event.done >= event.total
        first_item = stage.done_at_last_line == stage.done_at_start
        if now - stage.last_line < self.min_interval_s and not (first_item or last_item):
            return None
        took = now - stage.last_line
        stage.last_line, stage.done_at_last_line = now, event.done
        count = f"{event.done}/{event.total}" if event.total is not None else f"{event.done}"
        item = f" ({event.item})" if event.item else ""
        took_text = format_duration(took) if finished_now == 1 else f"{format_duration(took)} for {finished_now}"
        parts = [f"[{event.stage}] {count} {event.unit}{item} in {took_text}", f"elapsed {format_duration(elapsed)}"]
        if event.total is not None:
            left = max(event.total - event.done, 0)
            eta = elapsed / (event.done - stage.done_at_start) * left
            parts.append(f"{left} left, ETA {format_duration(eta)}")
        return "; ".join(parts)


class _RichProgressBars:
    """A progress callback that keeps one rich bar per stage on a live terminal display."""

    def __init__(self, progress: object) -> None:
        self.progress = progress
        self._tasks: dict[str, object] = {}
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            task = self._tasks.get(event.stage)
            if task is None:
                task = self.progress.add_task(event.stage, total=event.total, unit=event.unit, item=event.item)
                self._tasks[event.stage] = task
            elif event.done == 0 and not event.finished:
                # The stage runs again (the next unit's training): restart its bar.
                self.progress.reset(task, total=event.total, unit=event.unit, item=event.item)
            total = event.total if event.total is not None else (event.done if event.finished else None)
            self.progress.update(task, completed=event.done, total=total, unit=event.unit, item=event.item)


def _rich_progress(console: Console) -> object:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second in the stage's own unit (rich has none for items)."""

        def render(self, task: object) -> Text:
            speed = task.finished_speed or task.speed  # type: ignore[attr-defined]
            unit = task.fields.get("unit", "items")  # type: ignore[attr-defined]
            if not speed:
                return Text(f"-- {unit}/s", style="progress.data.speed")
            rate = f"{speed:.2f} {unit}/s" if speed >= 1 else f"{1 / speed:.1f} s/{unit.rstrip('s')}"
            return Text(rate, style="progress.data.speed")

    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),  # stage names hold user text
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[item]}", markup=False),
        console=console,
    )


@contextmanager
def progress_reporter(
    enabled: bool = True,
    *,
    interactive: bool | None = None,
    stream: IO[str] | None = None,
    min_interval_s: float = 2.0,
) -> Iterator[ProgressCallback | None]:
    """Show the progress of the work inside the ``with`` block.

    Args:
        enabled: ``False`` (``--no-progress``) yields ``None``: library code then reports nothing.
        interactive: Draw live bars (``True``) or print plain lines (``False``); ``None`` asks
            whether ``stream`` is a terminal.
        stream: Where progress goes; stderr by default, so stdout stays the command's result.
        min_interval_s: Least time between two plain item lines of one stage.

    Yields:
        The callback to pass as ``progress=`` to library functions, or ``None``.
    """
    if not enabled:
        yield None
        return
    stream = stream if stream is not None else sys.stderr
    if interactive is None:
        interactive = stream.isatty()
    if not interactive:
        yield PlainProgressPrinter(stream, min_interval_s=min_interval_s)
        return
    with _rich_progress(make_console(file=stream, force_terminal=True)) as bars:  # type: ignore[attr-defined]
        yield _RichProgressBars(bars)
