"""What ``describe`` and ``get`` print, from objects as the API server returns them."""

from __future__ import annotations

import io
from typing import Any

import pytest

from workunits.cli.show import attempt_action, describe_unit, describe_workjob, workjob_row


def failed_unit(history: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    return {
        "kind": "WorkUnit",
        "metadata": {"name": "clean-0042", "namespace": "etl"},
        "spec": {"image": "etl/clean:1.4", "retry": {"maxAttempts": 2}},
        "status": {
            "phase": "Failed",
            "reason": "Error",
            "attempts": len(history),
            "failedAttempts": len(history),
            "history": history,
            **status,
        },
    }


def attempt(number: int, action: str, **more: Any) -> dict[str, Any]:
    return {
        "attempt": number,
        "jobName": f"clean-0042-a{number}",
        "outcome": "Failed",
        "exitCode": 1,
        "reason": "Error",
        "action": action,
        **more,
    }


def history_actions(obj: dict[str, Any]) -> list[str]:
    out = io.StringIO()
    describe_unit(obj, [], out)
    lines = out.getvalue().splitlines()
    start = lines.index("History:") + 1
    header = lines[start]
    column = header.index("ACTION")
    rows = lines[start + 1 : start + 1 + len(obj["status"]["history"])]
    return [row[column:].split("  ")[0].strip() for row in rows]


def test_describe_shows_fail_for_the_attempt_that_spent_the_budget() -> None:
    obj = failed_unit([attempt(1, "Retry"), attempt(2, "Fail", actionReason="NoAttemptsLeft")])
    assert history_actions(obj) == ["Retry", "Fail (no attempts left)"]


def test_describe_corrects_a_retry_recorded_before_the_operator_said_fail() -> None:
    # Written by an operator that kept the policy's Retry on the last attempt.
    obj = failed_unit([attempt(1, "Retry"), attempt(2, "Retry")])
    assert history_actions(obj) == ["Retry", "Fail (no attempts left)"]


@pytest.mark.parametrize(
    ("entry", "status", "shown"),
    [
        pytest.param(attempt(1, "Fail"), {"attempts": 1, "phase": "Failed"}, "Fail", id="rule"),
        pytest.param(
            attempt(1, "Fail", actionReason="PastDeadline"),
            {"attempts": 1, "phase": "Failed"},
            "Fail (past the deadline)",
            id="deadline",
        ),
        pytest.param(
            attempt(1, "Retry"),
            {"attempts": 1, "phase": "Failed", "failedAttempts": 1},
            "Fail (past the deadline)",
            id="old-record-deadline",
        ),
        pytest.param(
            attempt(1, "Ignore"),
            {"attempts": 1, "phase": "Failed", "failedAttempts": 0},
            "Fail (past the deadline)",
            id="old-record-ignored",
        ),
        pytest.param(
            attempt(1, "Retry"), {"attempts": 1, "phase": "BackingOff"}, "Retry", id="waiting"
        ),
        pytest.param(
            attempt(1, "Retry"), {"attempts": 2, "phase": "Failed"}, "Retry", id="retried"
        ),
        pytest.param({"attempt": 1, "outcome": "Running"}, {"attempts": 1}, "", id="running"),
    ],
)
def test_an_attempts_action_is_what_happened(
    entry: dict[str, Any], status: dict[str, Any], shown: str
) -> None:
    assert attempt_action(entry, status, 3) == shown


def etl_workjob(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "WorkJob",
        "metadata": {"name": "etl-daily", "namespace": "etl"},
        "spec": {**spec, "tasks": []},
        "status": status,
    }


def test_get_shows_that_a_workjob_is_suspended() -> None:
    suspended = etl_workjob(
        {"suspend": True},
        {
            "phase": "Pending",
            "reason": "Suspended",
            "message": "spec.suspend is true: no new units are created",
            "progress": "4/10",
            "counts": {"total": 10, "succeeded": 4, "pending": 6},
        },
    )
    row = workjob_row(suspended, wide=False)
    assert row[:5] == ["etl-daily", "Pending", "Suspended", "4/10", "0"]
    assert row[5] == ""  # no ETA


def test_describe_shows_a_cancelled_workjobs_units_never_created_as_not_run() -> None:
    counts = {"total": 10, "succeeded": 1, "cancelled": 2, "notRun": 7}
    obj = etl_workjob(
        {"cancel": True},
        {
            "phase": "Cancelled",
            "reason": "Cancelled",
            "progress": "3/10",
            "counts": counts,
            "tasks": [{"name": "t", "phase": "Cancelled", "total": 10, "counts": counts}],
        },
    )
    out = io.StringIO()
    describe_workjob(obj, [], out)
    text = out.getvalue()
    assert "succeeded 1 · cancelled 2 · not run 7" in text
    (task_row,) = [line for line in text.splitlines() if line.startswith("  t ")]
    assert "3/10" in task_row.split()


def attempts_shown(obj: dict[str, Any]) -> str:
    out = io.StringIO()
    describe_unit(obj, [], out)
    (line,) = [line for line in out.getvalue().splitlines() if line.startswith("Attempts:")]
    return line.split(":", 1)[1].strip()


def test_describe_says_how_many_attempts_the_policy_ignored() -> None:
    # maxAttempts 1, two failures the policy ignored, the third attempt running.
    ignored = [attempt(1, "Ignore"), attempt(2, "Ignore")]
    obj = failed_unit([*ignored, {"attempt": 3, "outcome": "Running"}], phase="Running")
    obj["spec"]["retry"]["maxAttempts"] = 1
    obj["status"]["failedAttempts"] = 0
    assert attempts_shown(obj) == "3 (1 counted of at most 1; 2 ignored)"


def test_describe_counts_an_ignored_failure_that_ended_the_unit() -> None:
    # The last failure was ignored, but the deadline left no room for another attempt.
    history = [attempt(1, "Retry"), attempt(2, "Fail", actionReason="PastDeadline")]
    obj = failed_unit(history, failedAttempts=1)
    assert attempts_shown(obj) == "2 (1 counted of at most 2; 1 ignored)"


def test_describe_shows_the_plain_budget_when_nothing_was_ignored() -> None:
    obj = failed_unit([attempt(1, "Retry"), attempt(2, "Fail", actionReason="NoAttemptsLeft")])
    assert attempts_shown(obj) == "2 (at most 2)"
