"""Standard conditions: set one, keeping lastTransitionTime when its status holds."""

from __future__ import annotations

from workunits.api.common import Condition, ConditionStatus


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
