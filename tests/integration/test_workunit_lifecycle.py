"""A WorkUnit's life on the real control plane: retries, time limits, Jobs that vanish,
disruptions, cancel, suspend, TTL, dependencies."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from kubernetes import client, config
from tests.kube import (
    apply,
    get,
    items,
    kubectl,
    unit_jobs,
    unit_phase,
    wait_for,
    workunit,
)

FAST = {"initialDelaySeconds": 1, "factor": 2, "jitter": 0}
HANG = {"sim.workunits.io/outcome": "hang"}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def flaky(
    name: str,
    succeed_on: int,
    spec: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return workunit(
        name,
        spec,
        pod_labels={"sim.workunits.io/succeed-on-attempt": str(succeed_on)},
        pod_annotations=annotations,
    )


def test_fails_twice_then_succeeds_following_its_backoff(ns: str) -> None:
    apply(flaky("flaky", 3, {"retry": {"maxAttempts": 3, "backoff": FAST}}), ns)
    unit = unit_phase("flaky", ns, ("Succeeded",), timeout=90)
    status = unit["status"]
    assert status["attempts"] == 3
    assert [h["outcome"] for h in status["history"]] == ["Failed", "Failed", "Succeeded"]
    jobs = unit_jobs("flaky", ns)
    assert len(jobs) == 3  # C12: one Job per attempt, as many as status counts

    # Each new attempt waited at least its backoff (1s, then 2s) after the failure.
    for n, delay in ((2, 1), (3, 2)):
        failed_at = ts(status["history"][n - 2]["completionTime"])
        created = ts(jobs[n - 1]["metadata"]["creationTimestamp"])
        assert (created - failed_at).total_seconds() >= delay - 1, (n, failed_at, created)


def test_always_failing_ends_failed_at_its_last_attempt(ns: str) -> None:
    apply(
        workunit(
            "doomed",
            {"retry": {"maxAttempts": 2, "backoff": FAST}},
            pod_labels={"sim.workunits.io/outcome": "fail"},
        ),
        ns,
    )
    status = unit_phase("doomed", ns, ("Failed",), timeout=60)["status"]
    assert status["attempts"] == 2 and status["failedAttempts"] == 2
    assert "all 2 attempts used" in status["message"]
    last_end = ts(status["history"][-1]["completionTime"])
    assert ts(status["completionTime"]) >= last_end
    assert len(unit_jobs("doomed", ns)) == 2


def test_a_fail_rule_stops_retries_at_once(ns: str) -> None:
    retry = {
        "maxAttempts": 5,
        "backoff": FAST,
        "rules": [{"action": "Fail", "onExitCodes": {"values": [2]}}],
    }
    apply(
        workunit(
            "fatal",
            {"retry": retry},
            pod_labels={"sim.workunits.io/outcome": "fail"},
            pod_annotations={"sim.workunits.io/exit-code": "2"},
        ),
        ns,
    )
    status = unit_phase("fatal", ns, ("Failed",))["status"]
    assert status["attempts"] == 1 and status["history"][0]["action"] == "Fail"


def test_oom_retries_with_more_memory(ns: str) -> None:
    spec = {
        "retry": {"maxAttempts": 3, "backoff": FAST, "oomMemoryFactor": 2, "oomMemoryMax": "3Gi"}
    }
    body = flaky(
        "hungry",
        2,
        spec,
        {"sim.workunits.io/exit-code": "137", "sim.workunits.io/reason": "OOMKilled"},
    )
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gi"}}
    apply(body, ns)
    unit_phase("hungry", ns, ("Succeeded",), timeout=60)
    jobs = unit_jobs("hungry", ns)
    limits = [
        j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        for j in jobs
    ]
    assert limits == ["1Gi", "2Gi"]


def evict(ns: str, pod: str) -> None:
    """Evict a pod through the API, as a node drain does."""
    config.load_kube_config()
    with client.ApiClient() as api:
        client.CoreV1Api(api).create_namespaced_pod_eviction(
            pod, ns, client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=ns))
        )


def test_a_disruption_leaves_the_attempt_count_unchanged(ns: str) -> None:
    apply(workunit("evicted", pod_labels=HANG), ns)
    wait_for(
        "the pod to run",
        lambda: [p for p in items("pods", ns) if p["status"].get("phase") == "Running"],
    )
    pod = items("pods", ns)[0]["metadata"]["name"]

    evict(ns, pod)

    def replaced() -> bool:
        pods = items("pods", ns)
        return any(
            p["metadata"]["name"] != pod and p["status"].get("phase") == "Running" for p in pods
        )

    wait_for("a replacement pod", replaced, timeout=60)
    unit = wait_for(
        "the disruption to be counted",
        lambda: (u := get("workunit", "evicted", ns)) and u["status"].get("disruptions") == 1 and u,
        timeout=30,
    )
    assert unit["status"]["attempts"] == 1
    assert unit["status"]["phase"] == "Running"
    assert len(unit_jobs("evicted", ns)) == 1


def stuck(name: str, start_timeout: int) -> dict[str, Any]:
    """A unit whose pod never starts (its image cannot be pulled), tried once."""
    return workunit(
        name,
        {"startTimeoutSeconds": start_timeout, "retry": {"maxAttempts": 1}},
        pod_labels={"sim.workunits.io/outcome": "stuck"},
    )


def test_a_pod_that_never_starts_fails_after_the_start_timeout(ns: str) -> None:
    # C14
    apply(stuck("stuck", 3), ns)
    status = unit_phase("stuck", ns, ("Failed",), timeout=30)["status"]
    assert status["reason"] == "ImagePullBackOff"
    assert "not started after 3s" in status["message"]
    wait_for("the stuck Job to be removed", lambda: not unit_jobs("stuck", ns), timeout=30)


def test_a_stuck_pod_evicted_and_replaced_still_fails_at_the_start_timeout(ns: str) -> None:
    # The evicted pod ends with a terminated state although it never ran; that must not
    # count as a start, or the stuck replacement would wait for ever.
    apply(stuck("stuck-evicted", 10), ns)
    first = wait_for("the stuck pod", lambda: items("pods", ns), timeout=30)[0]
    evict(ns, first["metadata"]["name"])
    status = unit_phase("stuck-evicted", ns, ("Failed",), timeout=60)["status"]
    assert status["reason"] == "ImagePullBackOff"
    assert "not started after 10s" in status["message"]


def test_a_pod_no_node_can_take_fails_with_the_schedulers_reason(ns: str) -> None:
    spec = {
        "startTimeoutSeconds": 5,
        "retry": {"maxAttempts": 1},
        "resources": {"requests": {"cpu": "5000"}},
    }
    apply(workunit("too-big", spec), ns)
    status = unit_phase("too-big", ns, ("Failed",), timeout=30)["status"]
    assert status["reason"] == "Unschedulable"
    assert "not started after 5s" in status["message"] and "cpu" in status["message"]


def test_the_overall_deadline_wins_over_retries(ns: str) -> None:
    # C19: deadline 5s, two retries left, a unit that takes 10s.
    apply(
        workunit(
            "slow",
            {"deadlineSeconds": 5, "retry": {"maxAttempts": 3, "backoff": FAST}},
            pod_annotations={"sim.workunits.io/duration-ms": "10000"},
        ),
        ns,
    )
    unit = unit_phase("slow", ns, ("Failed",), timeout=30)
    assert unit["status"]["reason"] == "DeadlineExceeded"
    assert unit["status"]["attempts"] == 1
    created = ts(unit["metadata"]["creationTimestamp"])
    assert all(
        ts(j["metadata"]["creationTimestamp"]) <= created.replace()
        or (ts(j["metadata"]["creationTimestamp"]) - created).total_seconds() < 5
        for j in unit_jobs("slow", ns)
    )


def test_an_attempt_timeout_fails_the_attempt(ns: str) -> None:
    apply(
        workunit(
            "capped", {"attemptTimeoutSeconds": 2, "retry": {"maxAttempts": 1}}, pod_labels=HANG
        ),
        ns,
    )
    status = unit_phase("capped", ns, ("Failed",), timeout=30)["status"]
    assert status["reason"] == "DeadlineExceeded"


def test_a_finished_result_survives_the_jobs_removal(ns: str) -> None:
    # C16, first half
    apply(workunit("kept", pod_annotations={"sim.workunits.io/message": "42"}), ns)
    before = unit_phase("kept", ns, ("Succeeded",))
    kubectl("delete", "jobs", "--all", "-n", ns, "--wait=true")
    time.sleep(2)  # give the operator the chance to do the wrong thing
    after = get("workunit", "kept", ns)
    assert after is not None and after["status"] == before["status"]
    assert after["status"]["result"] == 42


def test_a_job_deleted_while_running_is_a_failed_attempt(ns: str) -> None:
    # C16, second half: the retry policy decides (here: no retries left).
    apply(workunit("gone", {"retry": {"maxAttempts": 1}}, pod_labels=HANG), ns)
    wait_for("the Job", lambda: unit_jobs("gone", ns))
    unit_phase("gone", ns, ("Running",))
    kubectl("delete", "jobs", "--all", "-n", ns)
    status = unit_phase("gone", ns, ("Failed",))["status"]
    assert status["reason"] == "JobDeleted"


def test_a_large_result_is_kept_in_a_configmap(ns: str) -> None:
    big = json.dumps({"rows": list(range(600))})
    apply(workunit("big", pod_annotations={"sim.workunits.io/message": big}), ns)
    status = unit_phase("big", ns, ("Succeeded",))["status"]
    ref = status["resultRef"]
    assert "result" not in status and ref["bytes"] == len(big)
    cm = get("configmap", ref["configMap"], ns)
    assert cm is not None and json.loads(cm["data"][ref["key"]]) == json.loads(big)
    assert cm["metadata"]["ownerReferences"][0]["kind"] == "WorkUnit"


def test_cancel_stops_the_running_job(ns: str) -> None:
    apply(workunit("stopme", pod_labels=HANG), ns)
    unit_phase("stopme", ns, ("Running",))
    kubectl(
        "patch", "workunit", "stopme", "-n", ns, "--type=merge", "-p", '{"spec": {"cancel": true}}'
    )
    unit_phase("stopme", ns, ("Cancelled",))
    wait_for("the Job to go", lambda: not unit_jobs("stopme", ns), timeout=30)


def test_suspend_holds_and_resume_runs(ns: str) -> None:
    apply(workunit("later", {"suspend": True}), ns)
    unit = unit_phase("later", ns, ("Pending",))
    assert unit["status"]["reason"] == "Suspended" and not unit_jobs("later", ns)
    kubectl(
        "patch", "workunit", "later", "-n", ns, "--type=merge", "-p", '{"spec": {"suspend": false}}'
    )
    unit_phase("later", ns, ("Succeeded",))


def test_ttl_deletes_the_finished_unit(ns: str) -> None:
    apply(workunit("brief", {"ttlSecondsAfterFinished": 1}), ns)
    wait_for("the unit to be deleted", lambda: get("workunit", "brief", ns) is None, timeout=30)


def test_a_chain_runs_in_order(ns: str) -> None:
    for name, deps in (("c", ["b"]), ("b", ["a"]), ("a", [])):
        apply(
            workunit(
                name,
                {"dependsOn": deps} if deps else {},
                pod_annotations={"sim.workunits.io/duration-ms": "500"},
            ),
            ns,
        )
    blocked = unit_phase("c", ns, ("Blocked", "Running", "Succeeded"))
    assert blocked["status"]["phase"] in ("Blocked", "Succeeded")
    for name in ("a", "b", "c"):
        unit_phase(name, ns, ("Succeeded",), timeout=60)
    a, b, c = (get("workunit", n, ns)["status"] for n in "abc")  # type: ignore[index]
    assert ts(a["completionTime"]) <= ts(b["startTime"])
    assert ts(b["completionTime"]) <= ts(c["startTime"])


def test_a_failed_dependency_fails_its_dependents(ns: str) -> None:
    apply(
        workunit(
            "root", {"retry": {"maxAttempts": 1}}, pod_labels={"sim.workunits.io/outcome": "fail"}
        ),
        ns,
    )
    apply(workunit("leaf", {"dependsOn": ["root"]}), ns)
    status = unit_phase("leaf", ns, ("Failed",))["status"]
    assert status["reason"] == "DependencyFailed" and "root" in status["message"]
    assert not unit_jobs("leaf", ns)


def test_a_cycle_is_reported_on_the_units(ns: str) -> None:
    apply(workunit("x", {"dependsOn": ["y"]}), ns)
    apply(workunit("y", {"dependsOn": ["x"]}), ns)
    for name in ("x", "y"):
        status = unit_phase(name, ns, ("Failed",))["status"]
        assert status["reason"] == "InvalidSpec" and "cycle" in status["message"]


def test_an_unknown_dependency_is_reported_then_resolved(ns: str) -> None:
    apply(workunit("waiter", {"dependsOn": ["later-one"]}), ns)
    status = unit_phase("waiter", ns, ("Blocked",))["status"]
    assert status["reason"] == "DependencyNotFound" and "later-one" in status["message"]
    apply(workunit("later-one"), ns)
    unit_phase("waiter", ns, ("Succeeded",), timeout=60)
