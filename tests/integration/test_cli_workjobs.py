"""The CLI on WorkJobs: watch, rerun, suspend, cancel, describe."""

from __future__ import annotations

from typing import Any

from tests.integration.test_cli import cli, in_terminal
from tests.integration.test_workjob import outcomes, scripted, workjob, workjob_phase
from tests.kube import apply, get, items, wait_for

FLAKY = scripted(
    {"sim.workunits.io/outcome": "${item.o}"}, {"sim.workunits.io/message": '{"n": ${item.n}}'}
)


def fan(name: str, failing: set[int], total: int, **spec: Any) -> dict[str, Any]:
    task = {"name": "fan", "generator": {"items": outcomes(failing, total)}, "template": FLAKY}
    return workjob(name, [task], **spec)


def test_watch_a_workjob_exits_0_with_a_full_bar(ns: str) -> None:
    apply(fan("good", set(), 6, parallelism=3), ns)
    code, output = in_terminal("watch", "wj/good", "-n", ns, "--timeout", "90")
    assert code == 0, output
    assert "6/6" in output


def test_watch_a_failing_workjob_exits_1(ns: str) -> None:
    apply(fan("bad", {0}, 3, parallelism=3), ns)
    result = cli("watch", "wj/bad", "-n", ns, "--timeout", "90")
    assert result.returncode == 1, result.stdout + result.stderr


def test_rerun_reruns_only_the_failed_units(ns: str) -> None:
    apply(fan("again", {1}, 4, parallelism=4, failurePolicy={"maxFailed": 1}), ns)
    workjob_phase("again", ns, ("Succeeded",))
    before = {u["metadata"]["name"]: u["metadata"]["uid"] for u in items("workunits", ns)}
    kept_jobs = {
        j["metadata"]["name"]
        for j in items("jobs", ns)
        if not j["metadata"]["name"].startswith("again-fan-1-")
    }

    result = cli("rerun", "again", "-n", ns)
    assert result.returncode == 0, result.stderr

    def rerun_done() -> dict[str, Any] | None:
        status = (get("workjob", "again", ns) or {}).get("status") or {}
        return (
            status
            if status.get("rerun") == 1 and status.get("phase") in ("Succeeded", "Failed")
            else None
        )

    wait_for("the re-run to finish", rerun_done, timeout=90)
    after = {u["metadata"]["name"]: u["metadata"]["uid"] for u in items("workunits", ns)}
    added = set(after) - set(before)
    assert len(added) == 1 and next(iter(added)).endswith("-r1")
    # The succeeded units and their Jobs are untouched.
    for name, uid in before.items():
        if not name.endswith("-1"):
            assert after.get(name) == uid
    assert kept_jobs <= {j["metadata"]["name"] for j in items("jobs", ns)}


def test_rerun_of_a_cancelled_workjob_clears_cancel_and_runs_it(ns: str) -> None:
    apply(fan("halted", set(), 3, parallelism=3, cancel=True), ns)
    workjob_phase("halted", ns, ("Cancelled",))

    result = cli("rerun", "halted", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert "re-run 1 (spec.cancel cleared): 3 " in result.stdout, result.stdout
    spec = (get("workjob", "halted", ns) or {})["spec"]
    assert (spec["rerun"], spec["cancel"]) == (1, False)

    def rerun_done() -> dict[str, Any] | None:
        status = (get("workjob", "halted", ns) or {}).get("status") or {}
        return status if status.get("rerun") == 1 and status.get("phase") == "Succeeded" else None

    status = wait_for("the re-run to succeed", rerun_done, timeout=90)
    assert status["counts"]["succeeded"] == 3 and status["counts"]["notRun"] == 0


def test_suspend_holds_new_units_and_resume_releases_them(ns: str) -> None:
    apply(fan("paused", set(), 6, parallelism=2, suspend=True), ns)
    wait_for("the WorkJob to be seen", lambda: (get("workjob", "paused", ns) or {}).get("status"))
    assert not items("workunits", ns)
    status = (get("workjob", "paused", ns) or {})["status"]
    assert status["reason"] == "Suspended" and not status.get("eta")
    listed = cli("get", "wj", "-n", ns)
    assert listed.stdout.splitlines()[1].split()[:4] == ["paused", "Pending", "Suspended", "0/6"]
    assert cli("resume", "wj/paused", "-n", ns).returncode == 0
    workjob_phase("paused", ns, ("Succeeded",))


def test_cancel_cancels_the_unfinished_units(ns: str) -> None:
    hang = scripted({"sim.workunits.io/outcome": "hang"})
    apply(
        workjob(
            "stopped",
            [{"name": "fan", "generator": {"range": {"end": 5}}, "template": hang}],
            parallelism=2,
        ),
        ns,
    )
    wait_for("units to run", lambda: len(items("workunits", ns)) == 2, timeout=60)
    assert cli("cancel", "wj/stopped", "-n", ns).returncode == 0
    workjob_phase("stopped", ns, ("Cancelled",))

    def all_cancelled() -> bool:
        units = items("workunits", ns)
        return bool(units) and all(
            (u.get("status") or {}).get("phase") == "Cancelled" for u in units
        )

    wait_for("every unit cancelled", all_cancelled, timeout=60)
    assert len(items("workunits", ns)) == 2  # no new unit after the cancel
    # The WorkJob books each unit as it ends.
    status = wait_for(
        "the WorkJob to count its cancelled units",
        lambda: (
            (s := (get("workjob", "stopped", ns) or {})["status"])["counts"]["cancelled"] == 2 and s
        ),
        timeout=30,
    )
    assert status["progress"] == "2/5", "the 3 units never created are not done"
    assert status["counts"]["notRun"] == 3


def test_describe_a_workjob_lists_its_failures(ns: str) -> None:
    apply(fan("described", {2}, 3, parallelism=3, failurePolicy={"maxFailed": 1}), ns)
    workjob_phase("described", ns, ("Succeeded",))
    result = cli("describe", "wj/described", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert "described-fan-2" in result.stdout and "fan" in result.stdout
