"""Standard conditions: set one, keeping lastTransitionTime when its status holds."""

from __future__ import annotations

from workunits.api.common import Condition, ConditionStatus
from workunits.api.workunit import Phase


def set_condition(
    conditions: list[Condition],
    kind: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """A new list with ``kind`` set; other conditions are kept as they are."""
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != kind:
            result.append(condition)
            continue
        found = True
        since = condition.last_transition_time if condition.status == status else now
        result.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=since or now,
                observed_generation=generation,
            )
        )
    if not found:
        result.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return result


def is_true(conditions: list[Condition], kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in conditions)


def phase_conditions(
    conditions: list[Condition],
    phase: Phase,
    reason: str,
    message: str,
    running_reason: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """The standard conditions of a resource in ``phase``, for people and for tools.

    ``kubectl wait`` reads Succeeded and Failed; kstatus (Flux, Argo CD) reads Ready,
    Reconciling while work remains, and Stalled when it cannot go on.
    """
    failed = phase in (Phase.FAILED, Phase.CANCELLED)
    wanted = [
        ("Succeeded", phase is Phase.SUCCEEDED, "Succeeded"),
        ("Failed", failed, reason),
        ("Running", phase is Phase.RUNNING, running_reason),
        ("Reconciling", not phase.finished, reason),
        ("Stalled", failed, reason),
        ("Ready", phase is Phase.SUCCEEDED, "Succeeded"),
    ]
    for kind, on, why in wanted:
        conditions = set_condition(
            conditions,
            kind,
            "True" if on else "False",
            why if on else phase.value,
            message if on else "",
            now,
            generation,
        )
    return conditions
