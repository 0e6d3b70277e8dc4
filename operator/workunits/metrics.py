"""Prometheus metrics of the operator, served on ``--metrics-port``.

Two kinds of numbers, kept apart:

- State (units and WorkJobs by phase, API writes, queue depth) is read from the
  operator's caches when Prometheus scrapes, by :class:`StateCollector`; no handler
  keeps a gauge up to date, so a gauge cannot drift from what the operator sees.
- Happenings (attempts started and failed, disruptions, units finished and how long
  they took, reconcile latency) are counted by the handlers, once per status write
  that shows them, through :meth:`Metrics.unit_changed` and :meth:`Metrics.timed`.

No label grows with the number of objects: no names, no namespaces. A per-namespace
view belongs to the objects themselves (``kubectl get work -A``); on a cluster with
forty teams, forty namespaces times every phase and reason would multiply every
series for little a dashboard can use. Failure reasons come from containers and the
operator, and only an allow-list of them is kept; the rest count as ``Other``.

The endpoint is served from the operator's event loop (aiohttp, which kopf uses for
its own probes), so the collector reads the caches on the thread that changes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from workunits.api.workunit import Phase

log = logging.getLogger(__name__)

# The *_created series double every counter for a timestamp dashboards do not use.
disable_created_metrics()  # type: ignore[no-untyped-call]

PHASES = tuple(p.value for p in Phase)
FINAL_PHASES = tuple(p.value for p in Phase if p.finished)
FAILURE_REASONS = frozenset(
    {
        "Error",
        "OOMKilled",
        "DeadlineExceeded",
        "StartTimeout",
        "JobDeleted",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "Evicted",
    }
)
OTHER = "Other"

# Units run from seconds to a day; reconciles take milliseconds to a few seconds.
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def failure_reason(reason: str | None) -> str:
    """The reason as a label value: one of the allow-list, or ``Other``."""
    return reason if reason in FAILURE_REASONS else OTHER


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


class Metrics:
    """The operator's metrics, in a registry of their own (tests make fresh ones)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.attempts_started = Counter(
            "workunits_attempts_started",
            "Attempts started: a Job created (or adopted) for a new attempt of a unit.",
            registry=r,
        )
        self.attempts_failed = Counter(
            "workunits_attempts_failed",
            "Attempts that failed, by reason (an allow-list; anything else is Other).",
            ["reason"],
            registry=r,
        )
        self.disruptions = Counter(
            "workunits_disruptions",
            "Pods of running attempts replaced after eviction, preemption or node loss.",
            registry=r,
        )
        self.units_finished = Counter(
            "workunits_units_finished",
            "Units that reached a final phase (Succeeded, Failed, Cancelled).",
            ["phase"],
            registry=r,
        )
        self.waiting = Histogram(
            "workunits_unit_waiting_seconds",
            "Time from a unit's creation to its first attempt, observed when it finishes.",
            ["phase"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.running = Histogram(
            "workunits_unit_running_seconds",
            "Time from a unit's first attempt to its end, retries and backoff included.",
            ["phase"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.total = Histogram(
            "workunits_unit_duration_seconds",
            "Time from a unit's creation to its end.",
            ["phase"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "workunits_reconcile_duration_seconds",
            "Time one reconcile of one object takes, API calls included.",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "workunits_reconcile_errors",
            "Reconciles that raised (and are retried later).",
            ["kind"],
            registry=r,
        )
        # Series that exist from the start read 0, not "no data", on a dashboard.
        for reason in (*sorted(FAILURE_REASONS), OTHER):
            self.attempts_failed.labels(reason)
        for phase in FINAL_PHASES:
            self.units_finished.labels(phase)
        self._state: StateCollector | None = None

    # -- happenings, counted by the handlers -------------------------------------------

    def unit_changed(
        self, old: Mapping[str, Any], new: Mapping[str, Any], created: str | None
    ) -> None:
        """Count what one successful status write of a unit shows: ``old`` -> ``new``."""
        started = int(new.get("attempts") or 0) - int(old.get("attempts") or 0)
        if started > 0:
            self.attempts_started.inc(started)

        before = {e.get("attempt"): e.get("outcome") for e in old.get("history") or []}
        for entry in new.get("history") or []:
            if entry.get("outcome") == "Failed" and before.get(entry.get("attempt")) != "Failed":
                self.attempts_failed.labels(failure_reason(entry.get("reason"))).inc()

        disrupted = int(new.get("disruptions") or 0) - int(old.get("disruptions") or 0)
        if disrupted > 0:
            self.disruptions.inc(disrupted)

        phase = new.get("phase")
        if phase in FINAL_PHASES and old.get("phase") not in FINAL_PHASES:
            self.units_finished.labels(phase).inc()
            self._observe_durations(phase, new, _time(created))

    def _observe_durations(
        self, phase: str, status: Mapping[str, Any], created: datetime | None
    ) -> None:
        started = _time(status.get("startTime"))
        ended = _time(status.get("completionTime"))
        total = _seconds(created, ended)
        if total is not None:
            self.total.labels(phase).observe(total)
        # A unit cancelled before any attempt waited all its life and never ran.
        waiting = _seconds(created, started) if started is not None else total
        if waiting is not None:
            self.waiting.labels(phase).observe(waiting)
        running = _seconds(started, ended)
        if running is not None:
            self.running.labels(phase).observe(running)

    def timed(
        self, kind: str, process: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        """Wrap a queue's reconcile function to observe its latency and its errors."""
        histogram = self.reconcile_seconds.labels(kind)
        errors = self.reconcile_errors.labels(kind)

        async def reconcile(key: Any) -> None:
            start = time.perf_counter()
            try:
                await process(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                errors.inc()
                raise
            finally:
                histogram.observe(time.perf_counter() - start)

        return reconcile

    # -- state, read at scrape time -----------------------------------------------------

    def watch(self, source: Callable[[], Any]) -> None:
        """Report the state of the operator context that ``source`` returns."""
        if self._state is not None:
            self.registry.unregister(self._state)
        self._state = StateCollector(source)
        self.registry.register(self._state)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _bodies(index: Any) -> Iterator[Any]:
    """Every body in a kopf index of ``key -> body`` (each key holds a store of them)."""
    if index is None:
        return
    for key in list(index):
        store = index.get(key) or ()
        for body in store:
            yield body
            break


def _phase_of(body: Any) -> str | None:
    if isinstance(body, Mapping):
        phase = (body.get("status") or {}).get("phase")
        return str(phase) if phase else None
    phase = getattr(body, "phase", None)  # the operator's packed cache entries
    return str(phase) if phase else None


def _by_phase(bodies: Iterable[Any]) -> dict[str, int]:
    counts = dict.fromkeys(PHASES, 0)
    for body in bodies:
        phase = _phase_of(body) or Phase.PENDING.value
        if phase in counts:
            counts[phase] += 1
    return counts


class StateCollector(Collector):
    """Units and WorkJobs by phase, API calls, queues: from the context at scrape time."""

    def __init__(self, source: Callable[[], Any]) -> None:
        self.source = source

    def describe(self) -> Iterable[Metric]:
        return []  # the families vary with the context; do not collect at registration

    def collect(self) -> Iterable[Metric]:
        try:
            ctx = self.source()
        except RuntimeError:  # not started yet
            return
        if ctx is None:
            return
        indices = getattr(ctx, "indices", {}) or {}

        unit_cache = getattr(ctx, "unit_cache", None)
        units = [e.packed for e in list(unit_cache.store.values())] if unit_cache else []
        for plural, help_text, bodies in (
            ("workunits", "WorkUnits the operator sees, by phase.", units),
            (
                "workjobs",
                "WorkJobs the operator sees, by phase.",
                _bodies(indices.get("workjobs_index")),
            ),
        ):
            family = GaugeMetricFamily(f"workunits_{plural}", help_text, labels=["phase"])
            for phase, count in _by_phase(bodies).items():
                family.add_metric([phase], count)
            yield family

        kube = getattr(ctx, "kube", None)
        if kube is not None:
            yield from _api_families(kube.writes, kube.errors)

        depth = GaugeMetricFamily(
            "workunits_queue_depth", "Objects waiting for a reconcile worker.", labels=["queue"]
        )
        wakeups = GaugeMetricFamily(
            "workunits_queue_scheduled",
            "Objects with a reconcile scheduled for later (backoff, timeouts, TTL).",
            labels=["queue"],
        )
        for name in ("workunits", "workjobs"):
            queue = getattr(ctx, "units" if name == "workunits" else name, None)
            if queue is not None:
                depth.add_metric([name], len(queue))
                wakeups.add_metric([name], queue.scheduled)
        yield depth
        yield wakeups
        yield from _watch_families(
            [unit_cache, getattr(ctx, "jobs", None), getattr(ctx, "pods", None)]
        )


def _watch_families(informers: Iterable[Any]) -> Iterator[Metric]:
    """The operator's own watches of WorkUnits, Jobs and pods."""
    events = CounterMetricFamily(
        "workunits_watch_events",
        "Watch events received on the operator's own watches, by resource.",
        labels=["resource"],
    )
    relists = CounterMetricFamily(
        "workunits_watch_relists",
        "Times a watch started over from a fresh list (expired or broken), by resource.",
        labels=["resource"],
    )
    cached = GaugeMetricFamily(
        "workunits_watch_objects", "Objects held by each watch's cache.", labels=["resource"]
    )
    for informer in informers:
        if informer is not None:
            events.add_metric([informer.resource], informer.events)
            relists.add_metric([informer.resource], informer.relists)
            cached.add_metric([informer.resource], len(informer.store))
    yield events
    yield relists
    yield cached


def _api_families(
    writes: Mapping[tuple[str, str], int], errors: Mapping[tuple[str, str], int]
) -> Iterator[Metric]:
    written = CounterMetricFamily(
        "workunits_api_writes",
        "Write requests the operator sent to the API server, by verb and resource.",
        labels=["verb", "resource"],
    )
    for (verb, resource), count in sorted(writes.items()):
        written.add_metric([verb, resource], count)
    yield written

    failed = CounterMetricFamily(
        "workunits_api_errors",
        "Requests the API server refused or failed, by verb and resource.",
        labels=["verb", "resource"],
    )
    for (verb, resource), count in sorted(errors.items()):
        failed.add_metric([verb, resource], count)
    yield failed

    # A create that met AlreadyExists (an adopted Job) counts as an error, not a Job.
    created = writes.get(("create", "jobs"), 0) - errors.get(("create", "jobs"), 0)
    yield CounterMetricFamily(
        "workunits_jobs_created", "Jobs the operator created.", value=max(created, 0)
    )


METRICS = Metrics()


# -- the endpoint -------------------------------------------------------------------------

_runner: web.AppRunner | None = None


async def serve(address: str, port: int, source: Callable[[], Any]) -> None:
    """Serve ``/metrics`` on ``address:port`` from the running event loop."""
    global _runner
    METRICS.watch(source)

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=METRICS.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    _runner = runner
    log.info("serving metrics on http://%s:%d/metrics", address, port)


async def stop() -> None:
    global _runner
    if _runner is not None:
        await _runner.cleanup()
        _runner = None
