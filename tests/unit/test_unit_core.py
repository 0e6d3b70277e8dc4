"""The WorkUnit state machine, step by step, with a fixed clock and fixed jitter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.unit.builders import UID, at, attempt, pod, unit
from workunits.api.workunit import Phase, WorkUnit
from workunits.core.names import job_name
from workunits.core.observe import ObservedAttempt
from workunits.core.unit import (
    CreateJob,
    Decision,
    DeleteJob,
    DeleteUnit,
    Dependency,
    Event,
    StoreResult,
    reconcile,
    running_report_due,
)

NO_JITTER = {"backoff": {"initialDelaySeconds": 10, "factor": 2, "jitter": 0}}


def run(
    u: WorkUnit,
    attempts: Sequence[ObservedAttempt] = (),
    now: float = 0,
    deps: Mapping[str, Dependency] | None = None,
) -> Decision:
    return reconcile(u, attempts, deps or {}, at(now), lambda: 0.5)


def step(
    u: WorkUnit,
    attempts: Sequence[ObservedAttempt] = (),
    now: float = 0,
    deps: Mapping[str, Dependency] | None = None,
) -> tuple[WorkUnit, Decision]:
    """Reconcile and carry the new status into the unit, as the API server would."""
    decision = run(u, attempts, now, deps)
    return u.model_copy(update={"status": decision.status}), decision


def kinds(decision: Decision) -> list[type]:
    return [type(a) for a in decision.actions if not isinstance(a, Event)]


def cond(u: WorkUnit, kind: str) -> str:
    return next(c.status for c in u.status.conditions if c.type == kind)


# ---- a unit that succeeds -----------------------------------------------------------


def test_a_new_unit_creates_its_first_job_and_is_running() -> None:
    u, d = step(unit())
    assert d.actions[0] == CreateJob(1, job_name("hello", UID, 1), None)
    assert u.status.phase is Phase.RUNNING
    assert u.status.attempts == 1
    assert u.status.observed_generation == 1
    assert cond(u, "Running") == "True" and cond(u, "Reconciling") == "True"


def test_success_records_result_as_json_and_sets_conditions() -> None:
    u, _ = step(unit())
    done = attempt(1, "Succeeded", ended=5, pod_=pod("Succeeded", 0, "Completed", '{"rows": 42}'))
    u, d = step(u, [done], now=6)
    assert u.status.phase is Phase.SUCCEEDED
    assert u.status.result == {"rows": 42}
    assert u.status.history[-1].outcome == "Succeeded"
    assert cond(u, "Succeeded") == "True" and cond(u, "Ready") == "True"
    assert cond(u, "Reconciling") == "False"
    assert kinds(d) == []


def test_a_result_that_is_not_json_is_kept_as_a_string() -> None:
    u, _ = step(unit())
    done = attempt(1, "Succeeded", ended=5, pod_=pod("Succeeded", 0, "Completed", "all good"))
    u, _ = step(u, [done], now=6)
    assert u.status.result == "all good"


def test_a_large_result_goes_to_a_configmap() -> None:
    u, _ = step(unit())
    big = '{"x": "' + "y" * 3000 + '"}'
    done = attempt(1, "Succeeded", ended=5, pod_=pod("Succeeded", 0, "Completed", big))
    u, d = step(u, [done], now=6)
    assert StoreResult(big) in d.actions
    assert u.status.result is None
    assert u.status.result_ref is not None and u.status.result_ref.bytes == len(big)


def test_nothing_changes_when_nothing_happened() -> None:
    u, _ = step(unit())
    running = attempt(1, "Active", pod_=pod())
    u, _ = step(u, [running], now=1)
    again = run(u, [running], now=2)
    assert kinds(again) == []
    assert again.status == u.status


# ---- failures and retries -----------------------------------------------------------


def failed(n: int, at_: float, code: int = 1, reason: str = "Error") -> ObservedAttempt:
    return attempt(
        n,
        "Failed",
        created=at_ - 1,
        ended=at_,
        pod_=pod("Failed", code, reason),
        job_reason="BackoffLimitExceeded",
    )


def test_fail_twice_then_succeed_follows_the_backoff() -> None:
    u, _ = step(unit({"retry": NO_JITTER}))
    jobs = [failed(1, 1)]
    u, d = step(u, jobs, now=1)
    assert u.status.phase is Phase.BACKING_OFF
    assert u.status.next_attempt_at == "2026-01-01T12:00:11Z"  # 1 + 10s
    assert kinds(d) == []

    u, d = step(u, jobs, now=5)  # too early: nothing
    assert kinds(d) == [] and u.status.phase is Phase.BACKING_OFF

    u, d = step(u, jobs, now=10.5)  # still too early
    assert kinds(d) == []
    u, d = step(u, jobs, now=11)
    assert d.actions[0] == CreateJob(2, job_name("hello", UID, 2), None)
    jobs.append(failed(2, 13.2))
    u, _ = step(u, jobs, now=13.2)
    assert u.status.next_attempt_at == "2026-01-01T12:00:34Z"  # 13.2 + 20s, rounded up

    u, d = step(u, jobs, now=34)
    assert kinds(d) == [CreateJob]
    jobs.append(attempt(3, "Succeeded", created=34, ended=35, pod_=pod("Succeeded", 0)))
    u, _ = step(u, jobs, now=35)
    assert u.status.phase is Phase.SUCCEEDED
    assert u.status.attempts == 3
    assert [h.outcome for h in u.status.history] == ["Failed", "Failed", "Succeeded"]


def test_the_last_allowed_failure_fails_the_unit_at_once() -> None:
    u, _ = step(unit({"retry": {**NO_JITTER, "maxAttempts": 2}}))
    u, _ = step(u, [failed(1, 1)], now=1)
    u, _ = step(u, [failed(1, 1)], now=12)
    u, _ = step(u, [failed(1, 1), failed(2, 13, code=7)], now=13)
    assert u.status.phase is Phase.FAILED
    assert u.status.reason == "Error"
    assert "all 2 attempts used" in (u.status.message or "")
    assert u.status.history[-1].exit_code == 7
    assert cond(u, "Failed") == "True" and cond(u, "Stalled") == "True"
    assert u.status.next_attempt_at is None


def test_the_last_allowed_failure_is_recorded_as_fail_with_no_attempts_left() -> None:
    u, _ = step(unit({"retry": {**NO_JITTER, "maxAttempts": 2}}))
    u, _ = step(u, [failed(1, 1)], now=1)
    u, _ = step(u, [failed(1, 1)], now=12)
    u, _ = step(u, [failed(1, 1), failed(2, 13)], now=13)
    first, last = u.status.history
    assert (first.action, first.action_reason) == ("Retry", None)
    assert (last.action, last.action_reason) == ("Fail", "NoAttemptsLeft")
    assert u.status.failed_attempts == 2 and u.status.next_attempt_at is None


def test_a_retry_the_deadline_forbids_is_recorded_as_fail_past_the_deadline() -> None:
    u, _ = step(unit({"deadlineSeconds": 5, "retry": NO_JITTER}))
    u, _ = step(u, [failed(1, 3)], now=3)
    assert (u.status.history[0].action, u.status.history[0].action_reason) == (
        "Fail",
        "PastDeadline",
    )


def test_a_retry_still_waiting_when_the_deadline_passes_is_recorded_as_fail() -> None:
    u, _ = step(unit({"deadlineSeconds": 30, "retry": NO_JITTER}))
    u, _ = step(u, [failed(1, 3)], now=3)
    assert u.status.history[0].action == "Retry"  # due at 13, before the deadline
    u, _ = step(u, [failed(1, 3)], now=31)  # the operator was away until after it
    assert u.status.phase is Phase.FAILED and u.status.reason == "DeadlineExceeded"
    assert (u.status.history[0].action, u.status.history[0].action_reason) == (
        "Fail",
        "PastDeadline",
    )


def test_a_fail_rule_ends_the_unit_on_the_first_failure() -> None:
    rules = {"rules": [{"action": "Fail", "onExitCodes": {"values": [3]}}]}
    u, _ = step(unit({"retry": rules}))
    u, _ = step(u, [failed(1, 1, code=3)], now=1)
    assert u.status.phase is Phase.FAILED
    assert u.status.history[-1].action == "Fail"
    assert u.status.history[-1].action_reason is None  # the policy's own Fail


def test_an_ignored_failure_does_not_spend_the_budget() -> None:
    rules = {
        **NO_JITTER,
        "maxAttempts": 1,
        "rules": [{"action": "Ignore", "onReasons": ["Evicted"]}],
    }
    u, _ = step(unit({"retry": rules}))
    u, _ = step(u, [failed(1, 1, reason="Evicted")], now=1)
    assert u.status.phase is Phase.BACKING_OFF
    assert u.status.failed_attempts == 0


def test_oom_grows_memory_up_to_the_ceiling() -> None:
    spec = {
        "resources": {"limits": {"memory": "1Gi"}},
        "retry": {**NO_JITTER, "maxAttempts": 5, "oomMemoryFactor": 2, "oomMemoryMax": "3Gi"},
    }
    u, _ = step(unit(spec))
    jobs = [failed(1, 1, 137, "OOMKilled")]
    u, _ = step(u, jobs, now=1)
    assert u.status.memory == "2Gi"
    u, d = step(u, jobs, now=12)
    assert d.actions[0] == CreateJob(2, job_name("hello", UID, 2), "2Gi")
    jobs.append(failed(2, 13, 137, "OOMKilled"))
    u, _ = step(u, jobs, now=13)
    assert u.status.memory == "3Gi"


# ---- time limits ----------------------------------------------------------------------


def test_a_pod_that_never_starts_fails_the_attempt_with_its_waiting_reason() -> None:
    u, d = step(unit({"startTimeoutSeconds": 60, "retry": NO_JITTER}))
    assert d.wake_at == at(60)
    stuck = attempt(
        1, "Active", pod_=pod("Pending", started=False, waiting="ImagePullBackOff"), started=False
    )
    u, d = step(u, [stuck], now=30)
    assert u.status.phase is Phase.RUNNING and kinds(d) == []
    u, d = step(u, [stuck], now=60)
    assert DeleteJob(job_name("hello", UID, 1), "start timeout") in d.actions
    assert u.status.phase is Phase.BACKING_OFF
    assert u.status.history[0].reason == "ImagePullBackOff"
    assert "not started after 60s" in (u.status.history[0].message or "")


def test_a_replacement_pod_gets_its_own_start_timeout() -> None:
    # The first pod ran, was evicted at 100 s; its replacement has waited since 101 s.
    u, _ = step(unit({"startTimeoutSeconds": 60, "retry": NO_JITTER}))
    waiting = attempt(
        1,
        "Active",
        pod_=pod("Pending", started=False, waiting="ImagePullBackOff"),
        started=False,
        disruptions=1,
        waiting_since=101,
    )
    u, d = step(u, [waiting], now=130)
    assert u.status.phase is Phase.RUNNING and kinds(d) == []
    assert d.wake_at == at(161)
    u, d = step(u, [waiting], now=161)
    assert DeleteJob(job_name("hello", UID, 1), "start timeout") in d.actions


def test_the_overall_deadline_stops_a_running_attempt() -> None:
    u, _ = step(unit({"deadlineSeconds": 5}))
    running = attempt(1, "Active", pod_=pod())
    u, d = step(u, [running], now=2)
    assert d.wake_at == at(5)
    u, d = step(u, [running], now=5)
    assert kinds(d) == [DeleteJob]
    assert u.status.phase is Phase.FAILED and u.status.reason == "DeadlineExceeded"


def test_no_attempt_starts_after_the_deadline() -> None:
    # C19: deadline 5s, retries left, backoff would start the next attempt after it.
    u, _ = step(unit({"deadlineSeconds": 5, "retry": NO_JITTER}))
    u, d = step(u, [failed(1, 3)], now=3)
    assert u.status.phase is Phase.FAILED
    assert u.status.reason == "DeadlineExceeded"
    assert kinds(d) == []


def test_an_attempt_timeout_is_reported_as_deadline_exceeded() -> None:
    u, _ = step(unit({"attemptTimeoutSeconds": 30, "retry": {**NO_JITTER, "maxAttempts": 1}}))
    timed_out = attempt(1, "Failed", ended=30, pod_=pod("Running"), job_reason="DeadlineExceeded")
    u, _ = step(u, [timed_out], now=30)
    assert u.status.phase is Phase.FAILED
    assert u.status.reason == "DeadlineExceeded"


# ---- every way a Job can end ------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_reason", "pod_", "reason"),
    [
        ("BackoffLimitExceeded", pod("Failed", 1, "Error"), "Error"),
        ("PodFailurePolicy", pod("Failed", 3, "Error"), "Error"),
        ("DeadlineExceeded", None, "DeadlineExceeded"),
        ("MaxFailedIndexesExceeded", None, "MaxFailedIndexesExceeded"),
        ("FailedIndexes", None, "FailedIndexes"),
        (None, pod("Failed", 137, "OOMKilled"), "OOMKilled"),
        (None, pod("Failed", 2, None), "Error"),
        (None, None, "Failed"),
    ],
    ids=[
        "backoff-limit",
        "pod-failure-policy",
        "deadline",
        "max-failed-indexes",
        "failed-indexes",
        "oom",
        "exit-code-only",
        "nothing-known",
    ],
)
def test_each_job_failure_maps_to_a_reason(job_reason: str | None, pod_: Any, reason: str) -> None:
    u, _ = step(unit({"retry": {"maxAttempts": 1}}))
    job = attempt(1, "Failed", ended=3, pod_=pod_, job_reason=job_reason)
    u, _ = step(u, [job], now=3)
    assert u.status.phase is Phase.FAILED
    assert u.status.reason == reason
    assert u.status.message


def test_a_job_deleted_while_running_is_a_failed_attempt() -> None:
    # C16, second half: the retry policy decides what comes next.
    u, _ = step(unit({"retry": NO_JITTER}))
    u, _ = step(u, [attempt(1, "Active", pod_=pod())], now=1)
    u, _ = step(u, [], now=2)
    assert u.status.history[0].reason == "JobDeleted"
    assert u.status.phase is Phase.BACKING_OFF


def test_a_succeeded_unit_is_never_reset_when_its_job_goes() -> None:
    # C16: TTL or a person removed the Job after success.
    u, _ = step(unit())
    u, _ = step(u, [attempt(1, "Succeeded", ended=2, pod_=pod("Succeeded", 0, message="7"))], now=2)
    after, d = step(u, [], now=100)
    assert after.status == u.status and kinds(d) == []


def test_a_job_created_but_not_recorded_is_adopted() -> None:
    # C09: the operator died between creating the Job and writing status.
    u = unit()
    running = attempt(1, "Active", pod_=pod())
    u, d = step(u, [running], now=1)
    assert kinds(d) == []
    assert u.status.attempts == 1 and u.status.phase is Phase.RUNNING


def test_an_attempt_never_reported_running_is_reported_once_with_its_outcome() -> None:
    # The operator held back the Running write; the Job succeeded in the meantime.
    done = attempt(1, "Succeeded", ended=1, pod_=pod("Succeeded", 0, "Completed", "42"))
    u, d = step(unit(), [done], now=1.5)
    assert kinds(d) == []
    assert u.status.phase is Phase.SUCCEEDED and u.status.attempts == 1
    assert u.status.result == 42
    assert u.status.start_time == "2026-01-01T12:00:00Z" and u.status.completion_time
    # One Event, not two written together: the outcome, naming the Job.
    events = [e for e in d.actions if isinstance(e, Event)]
    assert [e.reason for e in events] == ["Succeeded"]
    assert events[0].message == f"attempt 1 succeeded (Job {job_name('hello', UID, 1)})"


def test_an_unreported_attempt_that_fails_and_is_retried_keeps_its_start_event() -> None:
    failed = attempt(1, "Failed", ended=1, pod_=pod("Failed", 1, "Error"))
    u, d = step(unit({"retry": NO_JITTER}), [failed], now=1.5)
    assert u.status.phase is Phase.BACKING_OFF
    assert next(e.reason for e in d.actions if isinstance(e, Event)) == "AttemptStarted"


def test_running_is_reported_once_the_job_is_old_enough() -> None:
    delay = timedelta(seconds=2)
    new = {"phase": "Running", "attempts": 1}
    assert running_report_due({}, new, at(0), at(0.5), delay) == at(2)
    assert running_report_due({}, new, at(0), at(2), delay) is None
    assert running_report_due({"phase": "BackingOff"}, new, at(10), at(10), delay) == at(12)
    # Nothing held back: other phases, a unit already Running, no delay, Job unknown.
    assert running_report_due({}, {"phase": "Succeeded"}, at(0), at(0), delay) is None
    assert running_report_due({"phase": "Running"}, new, at(0), at(0), delay) is None
    assert running_report_due({}, new, at(0), at(0), timedelta(0)) is None
    assert running_report_due({}, new, None, at(0), delay) is None


def test_attempts_are_counted_from_jobs_not_pods() -> None:
    # C12: a Job whose pod was replaced twice is still one attempt.
    u, _ = step(unit())
    u, _ = step(u, [attempt(1, "Active", pod_=pod(), disruptions=2)], now=1)
    assert u.status.attempts == 1
    assert u.status.disruptions == 2
    assert u.status.history[0].disruptions == 2


# ---- dependencies -----------------------------------------------------------------------


def test_blocked_until_dependencies_succeed() -> None:
    spec = {"dependsOn": ["a", "b"]}
    deps = {"a": Dependency(Phase.SUCCEEDED), "b": Dependency(Phase.RUNNING)}
    u, d = step(unit(spec), deps=deps)
    assert u.status.phase is Phase.BLOCKED and kinds(d) == []
    deps["b"] = Dependency(Phase.SUCCEEDED)
    u, d = step(u, deps=deps)
    assert kinds(d) == [CreateJob]


def test_a_failed_dependency_fails_the_unit() -> None:
    u, _ = step(unit({"dependsOn": ["a"]}), deps={"a": Dependency(Phase.FAILED)})
    assert u.status.phase is Phase.FAILED and u.status.reason == "DependencyFailed"


def test_an_unknown_dependency_blocks_with_a_message() -> None:
    u, _ = step(unit({"dependsOn": ["ghost"]}))
    assert u.status.phase is Phase.BLOCKED
    assert u.status.reason == "DependencyNotFound"
    assert "ghost" in (u.status.message or "")


def test_a_cycle_is_reported() -> None:
    deps = {"a": Dependency(Phase.BLOCKED, ("b",)), "b": Dependency(Phase.BLOCKED, ("hello",))}
    u, _ = step(unit({"dependsOn": ["a"]}), deps=deps)
    assert u.status.phase is Phase.FAILED and u.status.reason == "InvalidSpec"
    assert "hello -> a -> b -> hello" in (u.status.message or "")


def test_depending_on_itself_is_invalid() -> None:
    u, _ = step(unit({"dependsOn": ["hello"]}))
    assert u.status.reason == "InvalidSpec"


# ---- suspend, cancel, TTL, generation ------------------------------------------------


def test_suspend_holds_the_first_attempt_and_resume_starts_it() -> None:
    u, d = step(unit({"suspend": True}))
    assert u.status.phase is Phase.PENDING and kinds(d) == []
    resumed = u.model_copy(update={"spec": u.spec.model_copy(update={"suspend": False})})
    _, d = step(resumed, now=1)
    assert kinds(d) == [CreateJob]


def test_cancel_stops_the_running_job() -> None:
    u, _ = step(unit())
    cancelled = u.model_copy(update={"spec": u.spec.model_copy(update={"cancel": True})})
    u, d = step(cancelled, [attempt(1, "Active", pod_=pod())], now=1)
    assert u.status.phase is Phase.CANCELLED
    assert kinds(d) == [DeleteJob]


def test_ttl_deletes_the_unit_after_it_finished() -> None:
    u, _ = step(unit({"ttlSecondsAfterFinished": 60}))
    done = [attempt(1, "Succeeded", ended=2, pod_=pod("Succeeded", 0))]
    u, d = step(u, done, now=2)
    assert d.wake_at == at(62)
    _, d = step(u, done, now=62)
    assert kinds(d) == [DeleteUnit]


def test_observed_generation_follows_the_spec() -> None:
    # C05
    u, _ = step(unit(generation=4))
    assert u.status.observed_generation == 4
    assert all(c.observed_generation == 4 for c in u.status.conditions)


def test_history_is_bounded() -> None:
    u, _ = step(
        unit({"retry": {"maxAttempts": 50, "backoff": {"initialDelaySeconds": 0, "jitter": 0}}})
    )
    jobs: list[ObservedAttempt] = []
    now = 0.0
    for n in range(1, 15):
        assert u.status.attempts == n  # attempt n was just created
        now += 1
        jobs.append(failed(n, now))
        u, _ = step(u, jobs, now=now)  # judged; a zero backoff starts attempt n + 1 at once
    assert u.status.attempts == 15
    assert len(u.status.history) == 10
    assert u.status.history[-1].attempt == 15


def test_waiting_is_told_once_as_an_event() -> None:
    deps = {"a": Dependency(Phase.RUNNING)}
    u, d = step(unit({"dependsOn": ["a"]}), deps=deps)
    assert [e.reason for e in d.actions if isinstance(e, Event)] == ["WaitingForDependencies"]
    _, d = step(u, deps=deps, now=5)
    assert not [e for e in d.actions if isinstance(e, Event)]


def test_success_waits_for_the_pods_final_status_to_read_its_result() -> None:
    # The Job's Complete condition can arrive before the pod's terminated state.
    u, _ = step(unit())
    early = attempt(1, "Succeeded", ended=5, pod_=pod("Running"))
    u, d = step(u, [early], now=6)
    assert u.status.phase is Phase.RUNNING and d.wake_at == at(7)
    done = attempt(1, "Succeeded", ended=5, pod_=pod("Succeeded", 0, "Completed", "[1, 2]"))
    u, _ = step(u, [done], now=7)
    assert u.status.phase is Phase.SUCCEEDED and u.status.result == [1, 2]


def test_success_without_a_pod_to_read_finishes_after_a_while() -> None:
    u, _ = step(unit())
    podless = attempt(1, "Succeeded", ended=5, pod_=None)
    u, _ = step(u, [podless], now=6)
    assert u.status.phase is Phase.RUNNING
    u, _ = step(u, [podless], now=21)
    assert u.status.phase is Phase.SUCCEEDED and u.status.result is None
