"""The retry policy: which failures are retried, and how long to wait before each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from workunits.api.workunit import Action, Backoff, RetryPolicy, RetryRule

# Reasons the operator gives to attempts it ended itself, beside the container's own.
DEADLINE_EXCEEDED = "DeadlineExceeded"
START_TIMEOUT = "StartTimeout"
JOB_DELETED = "JobDeleted"
OOM_KILLED = "OOMKilled"


@dataclass(frozen=True)
class Failure:
    """What is known of a failed attempt, as the rules see it."""

    reason: str
    exit_code: int | None = None
    pod_conditions: frozenset[str] = field(default_factory=frozenset)


def backoff_delay(backoff: Backoff, failures: int, rand: Callable[[], float]) -> float:
    """Seconds to wait after the ``failures``-th counted failure (1 = after the first).

    initial * factor^(failures-1), capped at maxDelaySeconds, then shortened by a random
    fraction of at most ``jitter`` (so the cap is never exceeded).
    """
    exponent = max(failures - 1, 0)
    try:
        delay = backoff.initial_delay_seconds * backoff.factor**exponent
    except OverflowError:
        delay = backoff.max_delay_seconds
    delay = min(delay, backoff.max_delay_seconds)
    return delay * (1 - backoff.jitter * rand())


def _matches(rule: RetryRule, failure: Failure) -> bool:
    if rule.on_exit_codes is not None:
        if failure.exit_code is None:
            return False
        inside = failure.exit_code in rule.on_exit_codes.values
        if inside != (rule.on_exit_codes.operator == "In"):
            return False
    if rule.on_reasons is not None and failure.reason not in rule.on_reasons:
        return False
    return rule.on_pod_conditions is None or bool(
        failure.pod_conditions.intersection(rule.on_pod_conditions)
    )


def classify(policy: RetryPolicy, failure: Failure) -> tuple[Action, int | None]:
    """The action for a failure and the index of the rule that chose it (None: default)."""
    for index, rule in enumerate(policy.rules):
        if _matches(rule, failure):
            return rule.action, index
    return policy.default_action, None
