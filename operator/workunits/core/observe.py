"""What an attempt looks like, read from its Job and that Job's pods.

Attempts are counted from Jobs (one Job per attempt), never from pods; pods only add
detail: exit code, termination reason and message, why a pod is not starting, and
how many pods were replaced after a disruption.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workunits.core.names import LABEL_ATTEMPT
from workunits.core.timefmt import parse_time


@dataclass(frozen=True, slots=True)
class PodFacts:
    """The few facts of one pod the decisions need (kept small: many are cached)."""

    name: str
    job_name: str
    phase: str
    started: bool  # has its container run at all
    deleted: bool
    exit_code: int | None = None
    reason: str | None = None  # the container's termination reason
    message: str | None = None  # the container's termination message
    waiting_reason: str | None = None
    waiting_message: str | None = None
    conditions: frozenset[str] = field(default_factory=frozenset)  # types that are True
    created: datetime | None = None
    ended: datetime | None = None  # its container's end, else its deletion


@dataclass(frozen=True)
class ObservedAttempt:
    """One attempt as its Job (and pods) show it now."""

    attempt: int
    job_name: str
    created: datetime | None
    state: str  # Active, Succeeded or Failed
    start_time: datetime | None = None
    completion_time: datetime | None = None
    job_reason: str | None = None  # the Job's Failed condition reason
    job_message: str | None = None
    pod: PodFacts | None = None  # the pod that decided the outcome, or the latest one
    started: bool = False  # its current pod (the newest not disrupted) has run
    # Since when it waits for a pod to start: the current pod's creation, or after a
    # disruption with no replacement yet, the disrupted pod's end; else the Job's.
    waiting_since: datetime | None = None
    disruptions: int = 0
    deleting: bool = False


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    first = statuses[0] if statuses else {}
    state = first.get("state") or {}
    last = first.get("lastState") or {}
    terminated = state.get("terminated") or last.get("terminated") or {}
    waiting = state.get("waiting") or {}
    phase = status.get("phase", "Pending")
    started = bool(state.get("running") or terminated) or phase in ("Running", "Succeeded")
    listed = status.get("conditions") or []
    conditions = frozenset(c.get("type", "") for c in listed if c.get("status") == "True")
    if not waiting.get("reason"):  # not even placed: the scheduler says why
        waiting = next(
            (c for c in listed if c.get("type") == "PodScheduled" and c.get("status") == "False"),
            waiting,
        )
    return PodFacts(
        name=meta.get("name", ""),
        job_name=_job_of(meta.get("labels") or {}),
        phase=phase,
        started=started,
        deleted=meta.get("deletionTimestamp") is not None,
        exit_code=terminated.get("exitCode"),
        reason=terminated.get("reason") or status.get("reason"),
        message=terminated.get("message"),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        conditions=conditions,
        created=parse_time(meta.get("creationTimestamp")),
        ended=parse_time(terminated.get("finishedAt") or meta.get("deletionTimestamp")),
    )


def _job_of(labels: Mapping[str, str]) -> str:
    return labels.get("batch.kubernetes.io/job-name") or labels.get("job-name") or ""


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def observe_attempt(job: Mapping[str, Any], pods: Iterable[PodFacts]) -> ObservedAttempt | None:
    """The attempt a Job ran; None for a Job that carries no attempt label."""
    meta = job.get("metadata") or {}
    try:
        attempt = int((meta.get("labels") or {}).get(LABEL_ATTEMPT, ""))
    except ValueError:
        return None
    status = job.get("status") or {}
    pods = sorted(pods, key=lambda p: (p.created or datetime.min.astimezone(), p.name))
    disrupted = [p for p in pods if "DisruptionTarget" in p.conditions]

    # The pod that decided: a terminated one that was not a disruption, else the latest.
    deciding = next(
        (p for p in reversed(pods) if p.phase in ("Succeeded", "Failed") and p not in disrupted),
        pods[-1] if pods else None,
    )
    # A disrupted pod is replaced: the attempt then waits on the replacement.
    current = next((p for p in reversed(pods) if p not in disrupted), None)
    created = parse_time(meta.get("creationTimestamp"))
    failed = _condition(job, "Failed")
    if _condition(job, "Complete") is not None or _condition(job, "SuccessCriteriaMet"):
        state = "Succeeded"
    elif failed is not None or _condition(job, "FailureTarget") is not None:
        state = "Failed"
    else:
        state = "Active"
    failed = failed or _condition(job, "FailureTarget")
    finished = _condition(job, "Complete") or failed
    return ObservedAttempt(
        attempt=attempt,
        job_name=meta.get("name", ""),
        created=created,
        state=state,
        start_time=parse_time(status.get("startTime")),
        completion_time=parse_time(
            status.get("completionTime") or (finished or {}).get("lastTransitionTime")
        ),
        job_reason=(failed or {}).get("reason"),
        job_message=(failed or {}).get("message"),
        pod=deciding,
        started=current is not None and current.started,
        waiting_since=_waiting_since(created, current, disrupted),
        disruptions=len(disrupted),
        deleting=meta.get("deletionTimestamp") is not None,
    )


def _waiting_since(
    created: datetime | None, current: PodFacts | None, disrupted: list[PodFacts]
) -> datetime | None:
    if current is not None and current.created is not None:
        return current.created
    moments = [m for m in (created, *(p.ended or p.created for p in disrupted)) if m]
    return max(moments, default=None)
