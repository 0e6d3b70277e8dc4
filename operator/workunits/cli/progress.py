"""Progress of a WorkJob (or one WorkUnit) for people: counts, rate, ETA, and its view.

The numbers are pure functions of snapshots, tested without a terminal; :func:`view`
turns one into what ``watch`` draws with rich.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

FINAL = ("Succeeded", "Failed", "Cancelled")
# Count keys in the order people read them, with the colour of each.
COUNTS = (
    ("succeeded", "green"),
    ("failed", "red"),
    ("running", "cyan"),
    ("backingOff", "yellow"),
    ("pending", "white"),
    ("blocked", "magenta"),
    ("cancelled", "bright_black"),
    ("notRun", "bright_black"),  # never created: the WorkJob ended first; not done
)
_UNIT_COUNT = {
    "Pending": "pending",
    "Blocked": "blocked",
    "Running": "running",
    "BackingOff": "backingOff",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Cancelled": "cancelled",
}


@dataclass(frozen=True)
class Snapshot:
    """What one read of the object says, reduced to what the progress view shows."""

    kind: str
    name: str
    phase: str
    counts: dict[str, int]
    total: int
    reason: str = ""
    message: str = ""
    eta: str = ""  # the operator's own estimate, when it gives one

    @property
    def done(self) -> int:
        return sum(self.counts.get(k, 0) for k in ("succeeded", "failed", "cancelled"))

    @property
    def finished(self) -> bool:
        return self.phase in FINAL

    @property
    def suspended(self) -> bool:
        """Held by spec.suspend: it goes on only when resumed, so no pace or ETA holds."""
        return self.reason == "Suspended" and not self.finished


def snapshot(obj: dict[str, Any]) -> Snapshot:
    """A WorkJob's counts as they are; a WorkUnit as a job of one unit."""
    status = obj.get("status") or {}
    phase = status.get("phase") or "Pending"
    name = obj["metadata"]["name"]
    if obj.get("kind") == "WorkUnit":
        counts = {_UNIT_COUNT.get(phase, "pending"): 1}
        message = status.get("message") or ""
        attempts = int(status.get("attempts") or 0)
        if attempts > 1 and phase not in FINAL:
            message = f"attempt {attempts}: {message}" if message else f"attempt {attempts}"
        return Snapshot("WorkUnit", name, phase, counts, 1, status.get("reason") or "", message)
    raw = status.get("counts") or {}
    counts = {key: int(raw.get(key) or 0) for key, _ in COUNTS}
    total = int(raw.get("total") or 0)
    return Snapshot(
        "WorkJob",
        name,
        phase,
        counts,
        total,
        status.get("reason") or "",
        status.get("message") or "",
        status.get("eta") or "",
    )


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``1h02m``, ``2d03h``; ``-`` when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_rate(per_second: float | None) -> str:
    """Units finished per second, per minute or per hour, whichever reads best."""
    if per_second is None or per_second <= 0:
        return "-"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.1f}/min"
    return f"{per_second * 3600:.1f}/h"


def format_counts(counts: dict[str, int], total: int | None = None) -> str:
    """``succeeded 40 · failed 2 · running 3``: the non-zero counts, in reading order."""
    parts = [f"{_label(key)} {counts[key]}" for key, _ in COUNTS if counts.get(key)]
    if total is not None and not parts:
        parts = [f"pending {total}"] if total else []
    return " · ".join(parts)


def _label(key: str) -> str:
    return {"backingOff": "backing off", "notRun": "not run"}.get(key, key)


@dataclass
class Rate:
    """Units finished per second over a sliding window of samples, and the ETA from it."""

    window: float = 120.0
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, now: float, done: int) -> None:
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()  # a re-run started over: the old pace says nothing
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def per_second(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or d1 <= d0:
            return None
        return (d1 - d0) / (t1 - t0)

    def eta(self, remaining: int) -> float | None:
        if remaining <= 0:
            return 0.0
        rate = self.per_second()
        return remaining / rate if rate else None


def progress_line(snap: Snapshot, rate: Rate) -> str:
    """``42/100 (42%) · 1.5/s · ETA 38s``; ``2/100 (2%) · suspended`` while held."""
    total = snap.total
    percent = f" ({snap.done * 100 // total}%)" if total else ""
    parts = [f"{snap.done}/{total or '?'}{percent}"]
    if snap.suspended:
        parts.append("suspended")
    elif not snap.finished:
        parts.append(format_rate(rate.per_second()))
        eta = rate.eta(max(total - snap.done, 0)) if total else None
        parts.append(f"ETA {format_duration(eta) if eta is not None else snap.eta or '-'}")
    return " · ".join(parts)


def view(snap: Snapshot, rate: Rate, elapsed: float) -> RenderableType:
    """The live view: a title, the bar, the counts, and the latest message."""
    colour = {"Succeeded": "green", "Failed": "red", "Cancelled": "bright_black"}.get(
        snap.phase, "cyan"
    )
    title = Text.assemble(
        (f"{snap.kind.lower()}/{snap.name}", "bold"), "  ", (snap.phase, f"bold {colour}")
    )
    title.append(f"  {format_duration(elapsed)}", style="dim")
    bar = Table.grid(padding=(0, 1))
    bar.add_column(width=40)
    bar.add_column()
    bar.add_row(
        ProgressBar(total=max(snap.total, 1), completed=snap.done, width=40),
        Text(progress_line(snap, rate)),
    )
    counts = Text()
    for key, style in COUNTS:
        if snap.counts.get(key):
            if counts:
                counts.append(" · ")
            counts.append(f"{_label(key)} {snap.counts[key]}", style=style)
    parts: list[RenderableType] = [title, bar, counts]
    if snap.message:
        parts.append(Text(snap.message, style="dim"))
    return Group(*parts)


def summary(snap: Snapshot, elapsed: float) -> str:
    """The last line: how it ended, what it counted, how long it took."""
    counts = format_counts(snap.counts)
    reason = f" ({snap.reason})" if snap.reason and snap.reason != snap.phase else ""
    tail = f": {snap.message}" if snap.message and snap.phase != "Succeeded" else ""
    return (
        f"{snap.kind.lower()}/{snap.name} {snap.phase}{reason} after {format_duration(elapsed)}"
        f" · {counts}{tail}"
    )
