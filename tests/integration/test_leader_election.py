"""Two replicas: one acts, the other takes over when it dies (C08)."""

from __future__ import annotations

from typing import Any

from tests.kube import Operator, apply, get, items, unit_phase, wait_for, workunit


def replicas(ns: str) -> list[Operator]:
    args = ("--namespace", ns, "--leader-elect", "--lease-namespace", ns, "--lease-duration", "8")
    return [Operator(*args, name=f"replica-{n}").start() for n in (1, 2)]


def holder(ns: str) -> str:
    lease = wait_for("a leader", lambda: get("lease", "workunits-operator", ns), timeout=30)
    return str(lease["spec"].get("holderIdentity") or "")


def one_job_per_unit(ns: str) -> None:
    per_unit: dict[tuple[str, str], int] = {}
    for job in items("jobs", ns):
        labels = job["metadata"]["labels"]
        key = (labels["workunits.io/unit-uid"], labels["workunits.io/attempt"])
        per_unit[key] = per_unit.get(key, 0) + 1
    assert per_unit and set(per_unit.values()) == {1}, per_unit


def test_one_replica_acts_and_the_standby_takes_over(solo_ns: str) -> None:
    ops = replicas(solo_ns)
    try:
        for n in range(5):
            apply(workunit(f"first-{n}"), solo_ns)
        for n in range(5):
            unit_phase(f"first-{n}", solo_ns, ("Succeeded",))
        one_job_per_unit(solo_ns)

        # A leader that cannot renew in time stops (on a badly loaded machine, say):
        # then there is nothing to take over from, and the test says so.
        alive = [op for op in ops if op.process is not None and op.process.poll() is None]
        assert len(alive) == 2, "a replica stopped early: " + " | ".join(
            op.tail(5) for op in ops if op not in alive
        )
        leader_id = holder(solo_ns)
        leader = next(op for op in ops if f"_{op.process.pid}_" in leader_id)  # type: ignore[union-attr]
        standby = next(op for op in ops if op is not leader)
        assert "became the leader" not in standby.log.read_text()
        leader.kill()

        for n in range(5):
            apply(workunit(f"second-{n}"), solo_ns)
        for n in range(5):
            unit_phase(f"second-{n}", solo_ns, ("Succeeded",), timeout=60)
        one_job_per_unit(solo_ns)
        assert "became the leader" in standby.log.read_text()

        def new_holder() -> Any:
            current = holder(solo_ns)
            return current if current and current != leader_id else None

        wait_for("the standby to hold the Lease", new_holder)
    finally:
        for op in ops:
            op.stop()
