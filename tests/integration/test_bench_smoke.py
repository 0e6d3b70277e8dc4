"""The benchmarks at a tiny size, so that they cannot rot: each one runs, in a namespace of
its own with an operator of its own, and its figures add up. No timing is asserted:
timings belong to ``make bench`` and bench/RESULTS.md."""

from __future__ import annotations

import pytest
from bench import scenarios
from bench.harness import Cluster


@pytest.fixture
def env(solo_ns: str) -> scenarios.Env:
    return scenarios.Env(Cluster(), solo_ns)


def test_overhead_times_units_and_bare_jobs(env: scenarios.Env) -> None:
    figures = scenarios.overhead(env, n=5, timeout=120)

    assert figures["units_seconds"] > 0 and figures["jobs_seconds"] > 0
    assert figures["ratio"] == figures["units_seconds"] / figures["jobs_seconds"]
    assert figures["floor_seconds"] > 0  # the same units, with no operator at all
    assert figures["floor_ratio"] == figures["floor_seconds"] / figures["jobs_seconds"]
    assert figures["operator_peak_rss_mb"] > 0


def test_writes_are_counted_per_unit_from_the_audit_log(env: scenarios.Env) -> None:
    if not env.cluster.audit.available:
        pytest.skip(f"no audit log at {env.cluster.audit.path}")

    figures = scenarios.writes(env, n=3, timeout=120)

    for events in ("no_events", "events"):
        at_once = figures[f"at_once_{events}"]["operator_by_kind"]
        retried = figures[f"retried_twice_{events}"]["operator_by_kind"]
        assert at_once["create jobs"] == 1  # one Job per attempt
        assert retried["create jobs"] == 3
        assert at_once["patch workunits/status"] >= 1
    assert "create events" not in figures["at_once_no_events"]["operator_by_kind"]
    assert figures["at_once_events"]["operator_by_kind"].get("create events", 0) > 0


def test_fanout_runs_a_workjob_to_the_end(env: scenarios.Env) -> None:
    figures = scenarios.fanout(env, n=10, parallelism=3, timeout=180)

    assert figures.get("error") is None
    assert figures["measured"] and figures["phase"] == "Succeeded"
    assert figures["succeeded"] == 10
    assert figures["status_bytes"] > 0 and figures["operator_peak_rss_mb"] > 0


def test_latency_sees_a_job_for_every_unit(env: scenarios.Env) -> None:
    figures = scenarios.latency(env, rate=5, seconds=2, timeout=120)

    assert figures["n"] == 10 and figures["with_child"] == 10
    assert figures["jobs_with_child"] == 10  # the bare Jobs' side: a pod for each
    assert figures["floor_with_child"] == 10  # no operator: the client's watch made each Job
    assert 0 < figures["p50_seconds"] <= figures["p99_seconds"] <= figures["max_seconds"]


def test_recovery_loses_nothing_and_duplicates_nothing(env: scenarios.Env) -> None:
    figures = scenarios.recovery(env, n=12, duration_ms=2000, timeout=180)

    assert figures.get("error") is None
    assert figures["duplicate_jobs"] == 0
    assert figures["units_lost"] == 0
    assert figures["jobs"] == 12  # every pod succeeds: one attempt each
    assert figures["restart_to_progress_seconds"] is not None
