"""The metrics: counts from status changes, state from the caches, bounded labels."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from workunits.handlers.units import unit_entry
from workunits.kube.informer import Informer
from workunits.metrics import FAILURE_REASONS, Metrics, failure_reason

CREATED = "2024-05-01T10:00:00Z"


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def running(attempt: int) -> dict[str, Any]:
    return {"attempt": attempt, "jobName": f"j-{attempt}", "outcome": "Running"}


def failed(attempt: int, reason: str) -> dict[str, Any]:
    return {"attempt": attempt, "jobName": f"j-{attempt}", "outcome": "Failed", "reason": reason}


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        pytest.param("OOMKilled", "OOMKilled", id="known"),
        pytest.param("DeadlineExceeded", "DeadlineExceeded", id="operator-reason"),
        pytest.param("SomethingNew", "Other", id="unknown"),
        pytest.param(None, "Other", id="missing"),
    ],
)
def test_failure_reasons_are_bounded(reason: str | None, label: str) -> None:
    assert failure_reason(reason) == label


def test_a_unit_life_is_counted_once_per_change() -> None:
    m = Metrics()
    s0: dict[str, Any] = {}
    s1 = {
        "phase": "Running",
        "attempts": 1,
        "startTime": "2024-05-01T10:00:10Z",
        "history": [running(1)],
    }
    s2 = {**s1, "phase": "BackingOff", "history": [failed(1, "OOMKilled")]}
    s3 = {**s2, "phase": "Running", "attempts": 2, "history": [failed(1, "OOMKilled"), running(2)]}
    s4 = {
        **s3,
        "phase": "Failed",
        "disruptions": 1,
        "completionTime": "2024-05-01T10:01:10Z",
        "history": [failed(1, "OOMKilled"), failed(2, "Brand new reason")],
    }
    for old, new in ((s0, s1), (s1, s2), (s2, s3), (s3, s4), (s4, s4)):
        m.unit_changed(old, new, CREATED)

    assert value(m, "workunits_attempts_started_total") == 2
    assert value(m, "workunits_attempts_failed_total", reason="OOMKilled") == 1
    assert value(m, "workunits_attempts_failed_total", reason="Other") == 1
    assert value(m, "workunits_disruptions_total") == 1
    assert value(m, "workunits_units_finished_total", phase="Failed") == 1
    assert value(m, "workunits_unit_duration_seconds_sum", phase="Failed") == 70
    assert value(m, "workunits_unit_waiting_seconds_sum", phase="Failed") == 10
    assert value(m, "workunits_unit_running_seconds_sum", phase="Failed") == 60


def test_a_unit_cancelled_before_it_ran_only_waited() -> None:
    m = Metrics()
    m.unit_changed(
        {"phase": "Pending"},
        {"phase": "Cancelled", "completionTime": "2024-05-01T10:00:30Z"},
        CREATED,
    )
    assert value(m, "workunits_unit_waiting_seconds_sum", phase="Cancelled") == 30
    assert value(m, "workunits_unit_running_seconds_count", phase="Cancelled") == 0


def test_every_reason_and_final_phase_reads_zero_from_the_start() -> None:
    m = Metrics()
    for reason in (*FAILURE_REASONS, "Other"):
        assert ("workunits_attempts_failed_total", (("reason", reason),)) in samples(m)
    for phase in ("Succeeded", "Failed", "Cancelled"):
        assert ("workunits_units_finished_total", (("phase", phase),)) in samples(m)


@dataclass
class FakeQueue:
    depth: int
    scheduled: int

    def __len__(self) -> int:
        return self.depth


@dataclass
class FakeKube:
    writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass
class FakeContext:
    kube: FakeKube
    indices: dict[str, Any]
    units: FakeQueue | None = None
    workjobs: FakeQueue | None = None
    unit_cache: Informer | None = None
    jobs: Informer | None = None
    pods: Informer | None = None


def index(*phases: str | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """A kopf index as the collector reads it: key -> store of bodies."""
    return {("ns", f"u{i}"): [{"status": {"phase": p} if p else {}}] for i, p in enumerate(phases)}


def unit_cache(*phases: str | None) -> Informer:
    """The operator's WorkUnit cache, filled as its watch would fill it."""
    cache = Informer("workunits", [lambda **_: None], "", unit_entry, lambda *_: None)
    cache._replace(
        0,
        {
            ("ns", f"u{i}"): unit_entry(
                {"metadata": {"name": f"u{i}", "namespace": "ns", "resourceVersion": str(i)}}
                | ({"status": {"phase": p}} if p else {})
            )
            for i, p in enumerate(phases)
        },
    )
    return cache


def test_state_comes_from_the_caches_at_scrape_time() -> None:
    kube = FakeKube()
    kube.writes.update({("create", "jobs"): 5, ("patch", "workunits/status"): 9})
    kube.errors.update({("create", "jobs"): 1})
    ctx = FakeContext(
        kube=kube,
        indices={"workjobs_index": index("Running")},
        unit_cache=unit_cache("Running", "Succeeded", "Succeeded", None),
        units=FakeQueue(3, 7),
        workjobs=FakeQueue(0, 1),
    )
    m = Metrics()
    m.watch(lambda: ctx)

    assert value(m, "workunits_workunits", phase="Succeeded") == 2
    assert value(m, "workunits_workunits", phase="Pending") == 1  # no status yet
    assert value(m, "workunits_workunits", phase="Failed") == 0
    assert value(m, "workunits_workjobs", phase="Running") == 1
    assert value(m, "workunits_api_writes_total", verb="create", resource="jobs") == 5
    assert value(m, "workunits_api_errors_total", verb="create", resource="jobs") == 1
    assert value(m, "workunits_jobs_created_total") == 4
    assert value(m, "workunits_queue_depth", queue="workunits") == 3
    assert value(m, "workunits_queue_scheduled", queue="workunits") == 7

    assert value(m, "workunits_watch_events_total", resource="jobs") == 0  # not started

    jobs = Informer("jobs", [lambda **_: None], "x", lambda body: body, lambda *_: None)
    jobs._replace(0, {("ns", "j1"): {"a": 1}})
    jobs._replace(0, {("ns", "j1"): {"a": 1}, ("ns", "j2"): {"a": 2}})
    jobs._apply(0, ("ns", "j3"), {"a": 3})
    ctx.jobs = jobs
    assert value(m, "workunits_watch_events_total", resource="jobs") == 1
    assert value(m, "workunits_watch_relists_total", resource="jobs") == 1
    assert value(m, "workunits_watch_objects", resource="jobs") == 3

    ctx.unit_cache = unit_cache("Failed")  # the next scrape sees the change
    assert value(m, "workunits_workunits", phase="Failed") == 1
    assert value(m, "workunits_workunits", phase="Succeeded") == 0


def test_no_context_yet_means_no_state_and_no_error() -> None:
    def not_started() -> Any:
        raise RuntimeError("not installed")

    m = Metrics()
    m.watch(not_started)
    assert ("workunits_queue_depth", (("queue", "workunits"),)) not in samples(m)


def test_no_label_names_an_object() -> None:
    m = Metrics()
    m.unit_changed({}, {"phase": "Succeeded", "attempts": 1}, CREATED)
    labels = {name for (_, pairs) in samples(m) for name, _ in pairs}
    assert labels <= {"reason", "phase", "kind", "le", "verb", "resource", "queue"}


def test_reconciles_are_timed_and_their_errors_counted() -> None:
    m = Metrics()

    async def ok(_: Any) -> None:
        return None

    async def broken(_: Any) -> None:
        raise ValueError("boom")

    asyncio.run(m.timed("workunit", ok)(("ns", "a")))
    with pytest.raises(ValueError):
        asyncio.run(m.timed("workunit", broken)(("ns", "b")))
    assert value(m, "workunits_reconcile_duration_seconds_count", kind="workunit") == 2
    assert value(m, "workunits_reconcile_errors_total", kind="workunit") == 1


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    import json
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "charts/workunits/dashboards/workunits.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bworkunits_[a-z_]+", target["expr"])
    }
    m = Metrics()  # with one of everything, so that every labelled series shows
    finished = {"phase": "Succeeded", "startTime": CREATED, "completionTime": CREATED}
    m.unit_changed({}, finished, CREATED)
    m.reconcile_errors.labels("workunit").inc()
    m.reconcile_seconds.labels("workunit").observe(0.1)
    kube = FakeKube(Counter({("create", "jobs"): 1}), Counter({("create", "jobs"): 1}))
    ctx = FakeContext(kube=kube, indices={}, units=FakeQueue(0, 0), workjobs=FakeQueue(0, 0))
    m.watch(lambda: ctx)
    exposed = {name for name, _ in samples(m)}
    assert queried, "the dashboard queries nothing"
    assert queried <= exposed, sorted(queried - exposed)
