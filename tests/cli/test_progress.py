"""The CLI's progress reporter: live bars on a terminal, plain whole lines elsewhere."""

from __future__ import annotations

import io

from synthaug.cli._progress import PlainProgressPrinter, format_duration, progress_reporter
from synthaug.progress import report


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_say_what_how_long_how_many_left_and_eta() -> None:
    stream, clock = io.StringIO(), FakeClock()
    printer = PlainProgressPrinter(stream, min_interval_s=0.0, clock=clock)
    report(printer, "study", 0, 4, unit="units")
    for done in range(1, 5):
        clock.now += 30.0
        report(printer, "study", done, 4, item=f"unit-{done}", unit="units")
    clock.now += 1.0
    report(printer, "study", 4, 4, unit="units", finished=True)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[study] started (4 units)",
        "[study] 1/4 units (unit-1) in 30.0s; elapsed 30.0s; 3 left, ETA 1m30s",
        "[study] 2/4 units (unit-2) in 30.0s; elapsed 1m00s; 2 left, ETA 1m00s",
        "[study] 3/4 units (unit-3) in 30.0s; elapsed 1m30s; 1 left, ETA 30.0s",
        "[study] 4/4 units (unit-4) in 30.0s; elapsed 2m00s; 0 left, ETA 0.0s",
        "[study] finished: 4 units in 2m01s",
    ]
    assert "\r" not in stream.getvalue()


def test_plain_lines_fold_fast_items_but_keep_first_last_and_finish() -> None:
    stream, clock = io.StringIO(), FakeClock()
    printer = PlainProgressPrinter(stream, min_interval_s=5.0, clock=clock)
    report(printer, "features", 0, 100, unit="batches")
    for done in range(1, 101):
        clock.now += 0.25
        report(printer, "features", done, 100, unit="batches")
    report(printer, "features", 100, 100, unit="batches", finished=True)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[features] started (100 batches)"
    assert lines[1] == "[features] 1/100 batches in 0.2s; elapsed 0.2s; 99 left, ETA 24.8s"
    # At most one line per 5 s of work: items 21, 41, 61, 81, then the last one and the end.
    assert lines[2] == "[features] 21/100 batches in 5.0s for 20; elapsed 5.2s; 79 left, ETA 19.8s"
    assert [line.split(" ")[1] for line in lines[3:7]] == ["41/100", "61/100", "81/100", "100/100"]
    assert lines[6].startswith("[features] 100/100 batches in 4.8s for 19;")
    assert lines[7] == "[features] finished: 100 batches in 25.0s"
    assert len(lines) == 8


def test_a_stage_that_runs_again_restarts_its_clock_and_unknown_totals_have_no_eta() -> None:
    stream, clock = io.StringIO(), FakeClock()
    printer = PlainProgressPrinter(stream, min_interval_s=0.0, clock=clock)
    for _ in range(2):
        report(printer, "train", 0, unit="epochs")
        clock.now += 2.0
        report(printer, "train", 1, unit="epochs")
        report(printer, "train", 1, unit="epochs", finished=True)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[train] started", "[train] 1 epochs in 2.0s; elapsed 2.0s", "[train] finished: 1 epochs in 2.0s"
    ] * 2


def test_reporter_without_a_terminal_prints_plain_lines() -> None:
    stream = io.StringIO()  # not a TTY, like a batch job's log file
    with progress_reporter(stream=stream, min_interval_s=0.0) as progress:
        assert isinstance(progress, PlainProgressPrinter)
        report(progress, "audit", 0, 2, unit="models")
        report(progress, "audit", 1, 2, unit="models", item="fold 1")
        report(progress, "audit", 2, 2, unit="models", item="fold 2")
        report(progress, "audit", 2, 2, unit="models", finished=True)
    text = stream.getvalue()
    assert "[audit] 2/2 models (fold 2)" in text
    assert "[audit] finished: 2 models" in text
    assert "\r" not in text and "\x1b" not in text


def test_reporter_on_a_terminal_draws_a_bar_per_stage() -> None:
    stream = io.StringIO()
    with progress_reporter(stream=stream, interactive=True) as progress:
        report(progress, "study", 0, 10, unit="units")
        report(progress, "train", 0, 5, unit="epochs")
        report(progress, "train", 5, 5, unit="epochs", finished=True)
        report(progress, "study", 3, 10, unit="units", item="real-n40")
    text = stream.getvalue()
    assert "study" in text and "train" in text
    assert "3/10" in text and "5/5" in text and "real-n40" in text
    assert "\x1b[" in text  # drawn with terminal control codes


def test_disabled_reporter_yields_no_callback() -> None:
    with progress_reporter(False) as progress:
        assert progress is None
        report(progress, "study", 0, 1)  # a no-op


def test_format_duration() -> None:
    assert [format_duration(s) for s in (4.24, 65, 3600 + 7 * 60 + 3)] == ["4.2s", "1m05s", "1h07m"]


def test_a_resumed_stage_counts_its_rate_from_where_it_resumed() -> None:
    stream, clock = io.StringIO(), FakeClock()
    printer = PlainProgressPrinter(stream, min_interval_s=0.0, clock=clock)
    report(printer, "train generator", 1000, 2000, unit="steps")
    clock.now += 10.0
    report(printer, "train generator", 1100, 2000, unit="steps")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "[train generator] resumed at 1000/2000 steps",
        "[train generator] 1100/2000 steps in 10.0s for 100; elapsed 10.0s; 900 left, ETA 1m30s",
    ]
