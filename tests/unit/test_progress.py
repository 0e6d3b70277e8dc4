"""Progress, rate and ETA as the CLI's watch shows them; the view rendered by rich."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from workunits.cli.progress import (
    Rate,
    format_counts,
    format_duration,
    format_rate,
    progress_line,
    snapshot,
    summary,
    view,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(None, "-", id="unknown"),
        pytest.param(-1, "-", id="negative"),
        pytest.param(float("inf"), "-", id="infinite"),
        pytest.param(0, "0s", id="zero"),
        pytest.param(42.4, "42s", id="seconds"),
        pytest.param(185, "3m05s", id="minutes"),
        pytest.param(3720, "1h02m", id="hours"),
        pytest.param(3 * 86400 + 7200, "3d02h", id="days"),
    ],
)
def test_durations_read_short(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("per_second", "text"),
    [
        pytest.param(None, "-", id="unknown"),
        pytest.param(0.0, "-", id="stalled"),
        pytest.param(2.5, "2.5/s", id="per-second"),
        pytest.param(0.5, "30.0/min", id="per-minute"),
        pytest.param(1 / 7200, "0.5/h", id="per-hour"),
    ],
)
def test_rates_pick_a_readable_unit(per_second: float | None, text: str) -> None:
    assert format_rate(per_second) == text


def workjob(phase: str, **counts: int) -> dict[str, object]:
    return {
        "kind": "WorkJob",
        "metadata": {"name": "sweep"},
        "status": {"phase": phase, "counts": counts},
    }


def test_rate_and_eta_come_from_the_pace_seen() -> None:
    rate = Rate()
    rate.add(0, 10)
    assert rate.per_second() is None  # one sample says nothing about pace
    rate.add(10, 30)
    assert rate.per_second() == pytest.approx(2.0)
    assert rate.eta(70) == pytest.approx(35.0)
    assert rate.eta(0) == 0.0


def test_rate_forgets_samples_outside_its_window() -> None:
    rate = Rate(window=60)
    rate.add(0, 0)
    rate.add(50, 100)  # fast at first
    rate.add(200, 110)  # slow since
    assert rate.per_second() == pytest.approx(10 / 150)


def test_a_rerun_restarts_the_rate() -> None:
    rate = Rate()
    rate.add(0, 90)
    rate.add(10, 100)
    rate.add(20, 95)  # failed units counted again: done went down
    assert rate.per_second() is None


def test_progress_line_shows_done_total_rate_and_eta() -> None:
    snap = snapshot(workjob("Running", total=100, succeeded=40, failed=2, running=8))
    rate = Rate()
    rate.add(0, 22)
    rate.add(10, 42)
    assert progress_line(snap, rate) == "42/100 (42%) · 2.0/s · ETA 29s"


def test_progress_line_falls_back_to_the_operators_eta() -> None:
    obj = workjob("Running", total=10, succeeded=1)
    obj["status"]["eta"] = "2030-01-01T00:00:00Z"  # type: ignore[index]
    assert progress_line(snapshot(obj), Rate()).endswith("ETA 2030-01-01T00:00:00Z")


def test_a_finished_workjob_shows_no_rate() -> None:
    snap = snapshot(workjob("Failed", total=3, succeeded=2, failed=1))
    assert progress_line(snap, Rate()) == "3/3 (100%)"
    assert snap.finished


def test_a_cancelled_workjob_counts_only_units_that_finished_as_done() -> None:
    snap = snapshot(workjob("Cancelled", total=10, succeeded=1, cancelled=2, notRun=7))
    assert snap.done == 3
    assert progress_line(snap, Rate()) == "3/10 (30%)"
    assert summary(snap, 5).endswith("succeeded 1 · cancelled 2 · not run 7")


def test_a_suspended_workjob_shows_no_rate_or_eta() -> None:
    obj = workjob("Pending", total=10, succeeded=4, pending=6)
    obj["status"]["reason"] = "Suspended"  # type: ignore[index]
    obj["status"]["eta"] = "2030-01-01T00:00:00Z"  # type: ignore[index]  # an older status
    rate = Rate()
    rate.add(0, 0)
    rate.add(10, 4)
    assert progress_line(snapshot(obj), rate) == "4/10 (40%) · suspended"


def test_counts_read_in_order_and_skip_zeros() -> None:
    counts = {"running": 3, "failed": 2, "succeeded": 40, "pending": 0, "backingOff": 1}
    assert format_counts(counts) == "succeeded 40 · failed 2 · running 3 · backing off 1"


def test_a_unit_is_a_job_of_one() -> None:
    unit = {
        "kind": "WorkUnit",
        "metadata": {"name": "one"},
        "status": {"phase": "BackingOff", "attempts": 2, "reason": "Error", "message": "exit 1"},
    }
    snap = snapshot(unit)
    assert (snap.total, snap.done, snap.counts) == (1, 0, {"backingOff": 1})
    assert snap.message == "attempt 2: exit 1"


def test_summary_says_how_it_ended() -> None:
    snap = snapshot(workjob("Failed", total=3, succeeded=2, failed=1))
    assert summary(snap, 75) == "workjob/sweep Failed after 1m15s · succeeded 2 · failed 1"


def test_the_view_renders_a_bar_counts_and_eta() -> None:
    console = Console(
        record=True, width=100, force_terminal=True, color_system="truecolor", file=io.StringIO()
    )
    snap = snapshot(workjob("Running", total=4, succeeded=2, running=1, pending=1))
    rate = Rate()
    rate.add(0, 0)
    rate.add(4, 2)
    console.print(view(snap, rate, 12))
    text = console.export_text(clear=False)
    assert "workjob/sweep  Running  12s" in text
    assert "2/4 (50%) · 30.0/min · ETA 4s" in text
    assert "succeeded 2 · running 1 · pending 1" in text
    assert "━" in text  # the bar
    styled = console.export_text(styles=True)
    assert "\x1b[" in styled  # coloured on a terminal
