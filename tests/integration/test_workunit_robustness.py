"""What must hold when things go wrong around a WorkUnit: restarts, foreign writes,
deletes in every state, Jobs that already exist."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.kube import (
    Operator,
    apply,
    get,
    items,
    kubectl,
    running,
    unit_jobs,
    unit_phase,
    wait_for,
    workunit,
)

from workunits.api.workunit import WorkUnit
from workunits.core.names import job_name
from workunits.kube.jobs import build_job

HANG = {"sim.workunits.io/outcome": "hang"}


def test_restart_while_backing_off_resumes_without_a_duplicate(solo_ns: str) -> None:
    retry = {"maxAttempts": 3, "backoff": {"initialDelaySeconds": 6, "jitter": 0}}
    body = workunit(
        "resume", {"retry": retry}, pod_labels={"sim.workunits.io/succeed-on-attempt": "2"}
    )
    first = Operator("--namespace", solo_ns, name="restart-a").start()
    try:
        apply(body, solo_ns)
        backing = unit_phase("resume", solo_ns, ("BackingOff",), timeout=30)
    finally:
        first.kill()
    due = backing["status"]["nextAttemptAt"]

    with running("--namespace", solo_ns, name="restart-b"):
        unit = unit_phase("resume", solo_ns, ("Succeeded",), timeout=60)
    jobs = unit_jobs("resume", solo_ns)
    assert [j["metadata"]["labels"]["workunits.io/attempt"] for j in jobs] == ["1", "2"]
    assert jobs[1]["metadata"]["creationTimestamp"] >= due
    assert unit["status"]["attempts"] == 2


def test_a_job_created_but_not_recorded_is_adopted(solo_ns: str) -> None:
    # C09: the operator died after creating the Job, before writing status.
    apply(workunit("adopt", pod_labels={"sim.workunits.io/message": "1"}), solo_ns)
    raw = get("workunit", "adopt", solo_ns)
    assert raw is not None
    unit = WorkUnit.model_validate(raw)
    name = job_name(unit.metadata.name, unit.metadata.uid, 1)
    kubectl("create", "-f", "-", input=json.dumps(build_job(unit, 1, name, None)))

    with running("--namespace", solo_ns, name="adopter"):
        status = unit_phase("adopt", solo_ns, ("Succeeded",))["status"]
    assert status["attempts"] == 1 and status["jobName"] == name
    assert len(unit_jobs("adopt", solo_ns)) == 1


def test_a_foreign_job_with_the_attempts_name_is_a_clear_error(solo_ns: str) -> None:
    apply(workunit("squatted", pod_labels=HANG), solo_ns)
    raw = get("workunit", "squatted", solo_ns)
    assert raw is not None
    unit = WorkUnit.model_validate(raw)
    name = job_name(unit.metadata.name, unit.metadata.uid, 1)
    foreign = build_job(unit, 1, name, None)
    del foreign["metadata"]["ownerReferences"]
    foreign["metadata"]["labels"] = {"team": "other"}
    kubectl("create", "-f", "-", input=json.dumps(foreign))

    with running("--namespace", solo_ns, name="squatted") as operator:
        status = wait_for(
            "the conflict to be reported",
            lambda: (
                (u := get("workunit", "squatted", solo_ns))
                and (u.get("status") or {}).get("reason") == "JobNameConflict"
                and u["status"]
            ),
        )
        assert name in status["message"]
        time.sleep(2)
        assert operator.process is not None and operator.process.poll() is None
    assert "Traceback" not in operator.log.read_text()


def test_status_only_changes_do_not_rerun_work(ns: str) -> None:
    # C03
    apply(workunit("steady", pod_labels=HANG), ns)
    unit_phase("steady", ns, ("Running",))
    wait_for(
        "the pod to run",
        lambda: [p for p in items("pods", ns) if p["status"].get("phase") == "Running"],
    )
    time.sleep(1)  # let the operator record the running pod
    foreign = [
        {
            "type": "Custom",
            "status": "True",
            "reason": "Tool",
            "message": "x",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    kubectl(
        "patch",
        "workunit",
        "steady",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": foreign}}),
    )
    kubectl("label", "workunit", "steady", "-n", ns, "team=data")
    version = get("workunit", "steady", ns)["metadata"]["resourceVersion"]  # type: ignore[index]
    time.sleep(3)
    after = get("workunit", "steady", ns)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == version  # no storm of patches
    assert after["status"]["attempts"] == 1 and len(unit_jobs("steady", ns)) == 1


def test_observed_generation_tracks_generation(ns: str) -> None:
    # C05
    apply(workunit("gen", {"suspend": True}), ns)
    first = unit_phase("gen", ns, ("Pending",))
    assert first["metadata"]["generation"] == 1
    assert first["status"]["observedGeneration"] == 1
    kubectl("patch", "workunit", "gen", "-n", ns, "--type=merge", "-p", '{"spec": {"priority": 5}}')

    def caught_up() -> dict[str, Any] | None:
        unit = get("workunit", "gen", ns)
        return unit if unit and unit["status"].get("observedGeneration") == 2 else None

    unit = wait_for("observedGeneration 2", caught_up)
    assert unit["metadata"]["generation"] == 2  # our own writes never raised it
    assert all(c["observedGeneration"] == 2 for c in unit["status"]["conditions"])


def test_create_and_delete_fifty_times_leaves_nothing_behind(ns: str) -> None:
    # C06: some deleted while running, some while waiting to retry, some at once.
    kinds = [
        ({}, HANG),
        ({"retry": {"backoff": {"initialDelaySeconds": 30}}}, {"sim.workunits.io/outcome": "fail"}),
        ({}, None),
    ]
    for round_ in range(50):
        spec, labels = kinds[round_ % 3]
        apply(workunit("churn", spec, pod_labels=labels), ns)
        if round_ % 3 != 2:
            unit_phase("churn", ns, ("Running", "BackingOff"), timeout=30)
        started = time.monotonic()
        kubectl("delete", "workunit", "churn", "-n", ns, "--timeout=20s")
        assert time.monotonic() - started < 20
    wait_for("no Job left", lambda: not items("jobs", ns), timeout=60)


def test_delete_with_orphan_propagation_completes(ns: str) -> None:
    # C10
    apply(workunit("orphaner", pod_labels=HANG), ns)
    wait_for("the Job", lambda: unit_jobs("orphaner", ns))
    kubectl("delete", "workunit", "orphaner", "-n", ns, "--cascade=orphan", "--timeout=30s")
    assert get("workunit", "orphaner", ns) is None
    jobs = items("jobs", ns)
    assert len(jobs) == 1 and not jobs[0]["metadata"].get("ownerReferences")
