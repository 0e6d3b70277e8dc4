"""Small builders of WorkUnits, Jobs and pods for tests of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from workunits.api.workunit import WorkUnit
from workunits.core.names import LABEL_ATTEMPT, job_name
from workunits.core.observe import ObservedAttempt, PodFacts
from workunits.core.timefmt import format_time

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
UID = "0b7e1c2a-1111-2222-3333-444455556666"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def unit(
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    name: str = "hello",
    generation: int = 1,
) -> WorkUnit:
    return WorkUnit.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": UID,
                "generation": generation,
                "creationTimestamp": format_time(T0),
            },
            "spec": {"image": "busybox", **(spec or {})},
            "status": status or {},
        }
    )


def pod(
    phase: str = "Running",
    exit_code: int | None = None,
    reason: str | None = None,
    message: str | None = None,
    started: bool = True,
    waiting: str | None = None,
    conditions: frozenset[str] = frozenset(),
    name: str = "p",
) -> PodFacts:
    return PodFacts(
        name=name,
        job_name="j",
        phase=phase,
        started=started,
        deleted=False,
        exit_code=exit_code,
        reason=reason,
        message=message,
        waiting_reason=waiting,
        waiting_message=f"{waiting} details" if waiting else None,
        conditions=conditions,
        created=T0,
    )


def attempt(
    n: int,
    state: str,
    created: float = 0,
    ended: float | None = None,
    pod_: PodFacts | None = None,
    job_reason: str | None = None,
    started: bool = True,
    disruptions: int = 0,
    waiting_since: float | None = None,
) -> ObservedAttempt:
    return ObservedAttempt(
        attempt=n,
        job_name=job_name("hello", UID, n),
        created=at(created),
        state=state,
        start_time=at(created),
        completion_time=at(ended) if ended is not None else None,
        job_reason=job_reason,
        pod=pod_,
        started=started,
        disruptions=disruptions,
        waiting_since=at(created if waiting_since is None else waiting_since),
    )


def job_dict(
    n: int, conditions: list[dict[str, Any]] | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": job_name("hello", UID, n),
            "labels": {LABEL_ATTEMPT: str(n)},
            "creationTimestamp": format_time(T0),
        },
        "status": {"conditions": conditions or [], **(status or {})},
    }
