"""The Argo CD health checks in docs/argocd/ classify real WorkUnit and WorkJob objects.

Argo CD runs a health check as Lua with the object in the global ``obj`` and takes the
table it returns. Here the same script runs in Lua (lupa) against objects whose status
is validated by the models, so a renamed status field breaks this test, not a user's
dashboard.
"""

from __future__ import annotations

import pathlib
from typing import Any

import lupa
import pytest

from workunits.api.workjob import WorkJobStatus
from workunits.api.workunit import WorkUnitStatus

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
CHECKS = {
    "WorkUnit": DOCS / "argocd" / "health-workunit.lua",
    "WorkJob": DOCS / "argocd" / "health-workjob.lua",
}
NOW = "2026-01-01T00:00:00Z"


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Run the kind's health check the way Argo CD does: ``obj`` global, a table back."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval("function(obj) " + CHECKS[kind].read_text() + "\nend")
    result = check(lua.table_from(obj, recursive=True))
    return str(result["status"]), str(result["message"] or "")


def condition(kind: str, status: str, reason: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": "",
        "lastTransitionTime": NOW,
        "observedGeneration": generation,
    }


def conditions_for(phase: str, generation: int) -> list[dict[str, Any]]:
    """The standard conditions the operator keeps for a phase."""
    done = phase in ("Succeeded", "Failed", "Cancelled")
    return [
        condition("Succeeded", "True" if phase == "Succeeded" else "False", phase, generation),
        condition("Failed", "True" if phase == "Failed" else "False", phase, generation),
        condition("Running", "True" if phase == "Running" else "False", phase, generation),
        condition("Reconciling", "False" if done else "True", phase, generation),
        condition("Ready", "True" if phase == "Succeeded" else "False", phase, generation),
    ]


def workunit(
    phase: str | None, generation: int = 1, observed: int | None = 1, message: str = "", **spec: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkUnit",
        "metadata": {"name": "clean-0042", "namespace": "etl", "generation": generation},
        "spec": {"image": "etl/clean:1.4", **spec},
    }
    if phase is None:
        return obj
    status: dict[str, Any] = {
        "phase": phase,
        "message": message,
        "attempts": 2,
        "jobName": "clean-0042-a2-1f3c9",
        "history": [
            {
                "attempt": 1,
                "jobName": "clean-0042-a1-9b2e0",
                "outcome": "Failed",
                "exitCode": 137,
                "reason": "OOMKilled",
                "action": "Retry",
            },
        ],
        "conditions": conditions_for(phase, observed or 0),
    }
    if observed is not None:
        status["observedGeneration"] = observed
    if phase == "BackingOff":
        status["nextAttemptAt"] = NOW
    if phase == "Succeeded":
        status["result"] = {"rows": 1200}
    obj["status"] = WorkUnitStatus.model_validate(status).dump()
    return obj


def workjob(phase: str, done: int, total: int, failed: int = 0) -> dict[str, Any]:
    status = {
        "phase": phase,
        "progress": f"{done}/{total}",
        "counts": {
            "total": total,
            "succeeded": done - failed,
            "failed": failed,
            "running": total - done,
        },
        "failures": [
            {
                "task": "transform",
                "index": 7,
                "unit": "etl-transform-7",
                "reason": "Error",
                "message": "exit code 2",
            }
        ]
        if failed
        else [],
        "conditions": conditions_for(phase, 3),
        "observedGeneration": 3,
    }
    return {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkJob",
        "metadata": {"name": "etl", "namespace": "etl", "generation": 3},
        "spec": {"tasks": [{"name": "transform", "template": {"spec": {"image": "x"}}}]},
        "status": WorkJobStatus.model_validate(status).dump(),
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(workunit(None), "Progressing", id="no status yet"),
        pytest.param(workunit("Pending"), "Progressing", id="pending"),
        pytest.param(workunit("Blocked"), "Progressing", id="blocked on dependencies"),
        pytest.param(workunit("Running"), "Progressing", id="running"),
        pytest.param(
            workunit("BackingOff", message="attempt 1 OOMKilled"), "Progressing", id="backing off"
        ),
        pytest.param(workunit("Succeeded"), "Healthy", id="succeeded"),
        pytest.param(workunit("Failed", message="3 attempts failed"), "Degraded", id="failed"),
        pytest.param(workunit("Cancelled"), "Suspended", id="cancelled"),
        pytest.param(workunit("Pending", suspend=True), "Suspended", id="suspended, waiting"),
        pytest.param(
            workunit("Running", suspend=True),
            "Progressing",
            id="suspended, an attempt still running",
        ),
        pytest.param(
            workunit("Succeeded", generation=2, observed=1),
            "Progressing",
            id="observedGeneration behind generation",
        ),
        pytest.param(
            workunit("Failed", generation=2, observed=None),
            "Progressing",
            id="no observedGeneration",
        ),
    ],
)
def test_workunit_health(obj: dict[str, Any], expected: str) -> None:
    assert health("WorkUnit", obj)[0] == expected


def test_a_stalled_unit_is_degraded() -> None:
    obj = workunit("BackingOff")
    stalled = condition("Stalled", "True", "InvalidSpec")
    stalled["message"] = "dependsOn: unknown unit load"
    obj["status"]["conditions"].append(stalled)
    assert health("WorkUnit", obj) == ("Degraded", "BackingOff: dependsOn: unknown unit load")


def test_the_message_carries_phase_and_status_message() -> None:
    assert health("WorkUnit", workunit("Failed", message="3 attempts failed")) == (
        "Degraded",
        "Failed: 3 attempts failed",
    )


def test_a_ready_condition_for_an_older_generation_is_stale() -> None:
    obj = workunit("Succeeded", generation=2, observed=2)
    for item in obj["status"]["conditions"]:
        item["observedGeneration"] = 1
    assert health("WorkUnit", obj)[0] == "Progressing"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(workjob("Running", 412, 1000, failed=3), "Progressing", id="running"),
        pytest.param(workjob("Succeeded", 1000, 1000), "Healthy", id="succeeded"),
        pytest.param(workjob("Failed", 1000, 1000, failed=2), "Degraded", id="failed"),
        pytest.param(workjob("Cancelled", 10, 1000), "Suspended", id="cancelled"),
    ],
)
def test_workjob_health(obj: dict[str, Any], expected: str) -> None:
    assert health("WorkJob", obj)[0] == expected


def test_workjob_message_shows_progress() -> None:
    assert health("WorkJob", workjob("Running", 412, 1000)) == (
        "Progressing",
        "Running (412/1000 done)",
    )


def test_the_docs_carry_the_same_scripts() -> None:
    # docs/gitops.md shows each script for copying into argocd-cm; they must not drift.
    page = (DOCS / "gitops.md").read_text()
    for path in CHECKS.values():
        body = "\n".join("      " + line if line else "" for line in path.read_text().splitlines())
        assert body in page, f"docs/gitops.md does not carry {path.name} as it is"
