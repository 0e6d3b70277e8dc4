"""What an attempt looks like from its Job and pods: which pod is current, whether it
started, and since when the attempt waits for one."""

from __future__ import annotations

from typing import Any

from tests.unit.builders import at, job_dict
from workunits.core.observe import observe_attempt, pod_facts
from workunits.core.timefmt import format_time


def pod(
    name: str,
    created: float,
    *,
    running: bool = False,
    waiting: str | None = None,
    ended: float | None = None,
    disrupted: bool = False,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if running:
        state["running"] = {"startedAt": format_time(at(created + 1))}
    elif ended is not None:
        state["terminated"] = {"exitCode": 143, "finishedAt": format_time(at(ended))}
    elif waiting:
        state["waiting"] = {"reason": waiting}
    phase = "Failed" if ended is not None else "Running" if running else "Pending"
    conditions = [{"type": "DisruptionTarget", "status": "True"}] if disrupted else []
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": format_time(at(created)),
            "labels": {"batch.kubernetes.io/job-name": "j"},
        },
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{"state": state}],
        },
    }


def observe(*pods: dict[str, Any]) -> Any:
    seen = observe_attempt(job_dict(1), [pod_facts(p) for p in pods])
    assert seen is not None
    return seen


def test_with_no_pod_yet_the_attempt_waits_since_its_job_was_created() -> None:
    seen = observe()
    assert not seen.started and seen.waiting_since == at(0)


def test_a_running_pod_has_started() -> None:
    assert observe(pod("a", 1, running=True)).started


def test_a_stuck_pod_evicted_and_replaced_by_a_stuck_one_has_not_started() -> None:
    # The evicted pod ends with a terminated state although it never ran; the attempt
    # still waits for a pod to start, since the replacement's creation.
    seen = observe(
        pod("a", 1, ended=4, disrupted=True),
        pod("b", 5, waiting="ImagePullBackOff"),
    )
    assert not seen.started
    assert seen.waiting_since == at(5)
    assert seen.pod is not None and seen.pod.waiting_reason == "ImagePullBackOff"
    assert seen.disruptions == 1


def test_a_long_run_then_an_eviction_gives_the_replacement_its_own_start_timeout() -> None:
    seen = observe(pod("a", 1, ended=3600, disrupted=True), pod("b", 3601))
    assert not seen.started and seen.waiting_since == at(3601)


def test_after_a_disruption_with_no_replacement_yet_the_wait_starts_at_its_end() -> None:
    seen = observe(pod("a", 1, ended=3600, disrupted=True))
    assert not seen.started and seen.waiting_since == at(3600)


def test_a_replacement_that_runs_has_started() -> None:
    seen = observe(pod("a", 1, ended=4, disrupted=True), pod("b", 5, running=True))
    assert seen.started


def test_a_pod_no_node_can_take_says_why_it_waits() -> None:
    unschedulable = pod("a", 1)
    unschedulable["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }
    ]
    unschedulable["status"]["containerStatuses"] = []
    current = observe(unschedulable).pod
    assert current.waiting_reason == "Unschedulable"
    assert current.waiting_message == "0/3 nodes are available: 3 Insufficient cpu."
