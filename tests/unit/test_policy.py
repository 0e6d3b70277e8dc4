"""The retry policy: backoff arithmetic and the classification rules."""

from __future__ import annotations

import pytest

from workunits.api.workunit import Action, Backoff, RetryPolicy
from workunits.core.policy import Failure, backoff_delay, classify


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (7, 600), (50, 600), (10_000, 600)],
    ids=["first", "second", "third", "fourth", "capped", "far-capped", "overflow-capped"],
)
def test_backoff_without_jitter_doubles_up_to_the_cap(failures: int, expected: float) -> None:
    backoff = Backoff(initial_delay_seconds=10, factor=2, max_delay_seconds=600, jitter=0)
    assert backoff_delay(backoff, failures, lambda: 0.7) == pytest.approx(expected)


def test_jitter_only_shortens_and_stays_within_its_fraction() -> None:
    backoff = Backoff(initial_delay_seconds=100, factor=1, max_delay_seconds=100, jitter=0.2)
    assert backoff_delay(backoff, 1, lambda: 0.0) == pytest.approx(100)
    assert backoff_delay(backoff, 1, lambda: 0.5) == pytest.approx(90)
    assert backoff_delay(backoff, 1, lambda: 0.999999) == pytest.approx(80, abs=1e-3)


def test_factor_one_is_a_constant_backoff() -> None:
    backoff = Backoff(initial_delay_seconds=5, factor=1, max_delay_seconds=600, jitter=0)
    assert [backoff_delay(backoff, n, lambda: 0) for n in (1, 2, 3)] == [5, 5, 5]


def test_defaults_are_the_documented_ones() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.backoff == Backoff(
        initial_delay_seconds=10, factor=2, max_delay_seconds=600, jitter=0.2
    )
    assert policy.default_action is Action.RETRY
    assert policy.rules == []


def test_a_partial_backoff_keeps_the_other_defaults() -> None:
    policy = RetryPolicy.model_validate({"backoff": {"factor": 3}})
    assert policy.backoff.factor == 3
    assert policy.backoff.initial_delay_seconds == 10
    assert policy.max_attempts == 3


POLICY = RetryPolicy.model_validate(
    {
        "rules": [
            {"action": "Fail", "onExitCodes": {"values": [2, 3]}},
            {"action": "Ignore", "onPodConditions": ["DisruptionTarget"]},
            {"action": "Retry", "onReasons": ["OOMKilled"]},
            {"action": "Fail", "onExitCodes": {"operator": "NotIn", "values": [0, 1, 137]}},
        ],
        "defaultAction": "Retry",
    }
)


@pytest.mark.parametrize(
    ("failure", "action", "rule"),
    [
        (Failure("Error", 2), Action.FAIL, 0),
        (Failure("Error", 3), Action.FAIL, 0),
        (Failure("Error", 1, frozenset({"DisruptionTarget"})), Action.IGNORE, 1),
        (Failure("OOMKilled", 137), Action.RETRY, 2),
        (Failure("Error", 42), Action.FAIL, 3),
        (Failure("Error", 1), Action.RETRY, None),
        (Failure("StartTimeout", None), Action.RETRY, None),
    ],
    ids=[
        "exit-2-fails",
        "exit-3-fails",
        "disruption-ignored",
        "oom-retried",
        "unknown-code-fails-by-notin",
        "exit-1-default",
        "no-exit-code-skips-code-rules",
    ],
)
def test_first_matching_rule_decides(failure: Failure, action: Action, rule: int | None) -> None:
    assert classify(POLICY, failure) == (action, rule)


def test_a_rule_needs_all_its_criteria() -> None:
    policy = RetryPolicy.model_validate(
        {"rules": [{"action": "Fail", "onExitCodes": {"values": [137]}, "onReasons": ["Error"]}]}
    )
    assert classify(policy, Failure("OOMKilled", 137)) == (Action.RETRY, None)
    assert classify(policy, Failure("Error", 137)) == (Action.FAIL, 0)


def test_default_action_applies_when_no_rule_matches() -> None:
    policy = RetryPolicy.model_validate({"defaultAction": "Fail"})
    assert classify(policy, Failure("Error", 1)) == (Action.FAIL, None)
