"""WorkJobs on the real control plane: fan-out, failure budgets, re-runs, parallelism."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from tests.kube import Operator, apply, get, items, kubectl, running, wait_for


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def workjob(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkJob",
        "metadata": {"name": name},
        "spec": {"tasks": tasks, **spec},
    }


def scripted(
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """A unit template whose simulated pod follows its (substituted) labels."""
    return {
        "spec": {
            "retry": {"maxAttempts": 1},
            "template": {
                "metadata": {"labels": labels or {}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "work", "image": "busybox"}]},
            },
        }
    }


def workjob_phase(
    name: str, ns: str, phases: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        wj = get("workjob", name, ns)
        return wj if ((wj or {}).get("status") or {}).get("phase") in phases else None

    return wait_for(f"WorkJob {ns}/{name} to reach {phases}", check, timeout)


def outcomes(failing: set[int], total: int) -> list[dict[str, Any]]:
    return [{"n": i, "o": "fail" if i in failing else "ok"} for i in range(total)]


FAILING = scripted(
    {"sim.workunits.io/outcome": "${item.o}"}, {"sim.workunits.io/message": '{"n": ${item.n}}'}
)


def test_failures_within_the_budget_succeed_and_are_listed(ns: str) -> None:
    task = {
        "name": "fan",
        "generator": {"items": outcomes({2, 5}, 10)},
        "template": FAILING,
        "aggregate": {"op": "count"},
    }
    apply(workjob("tolerant", [task], parallelism=4, failurePolicy={"maxFailed": 2}), ns)
    status = workjob_phase("tolerant", ns, ("Succeeded",))["status"]
    assert status["counts"]["succeeded"] == 8 and status["counts"]["failed"] == 2
    assert status["progress"] == "10/10"
    assert sorted(f["index"] for f in status["failures"]) == [2, 5]
    assert all(f["reason"] for f in status["failures"])


def test_over_the_budget_fails_and_cancels_the_rest(ns: str) -> None:
    slow = scripted(
        {"sim.workunits.io/outcome": "${item.o}"}, {"sim.workunits.io/duration-ms": "1500"}
    )
    task = {"name": "fan", "generator": {"items": outcomes({0, 1}, 12)}, "template": slow}
    apply(workjob("strict", [task], parallelism=4, failurePolicy={"maxFailed": 1}), ns)
    status = workjob_phase("strict", ns, ("Failed",))["status"]
    assert status["reason"] == "FailureBudgetExceeded"

    def settled() -> dict[str, Any] | None:
        units = items("workunits", ns)
        phases = [(u.get("status") or {}).get("phase") for u in units]
        return (
            {"units": units}
            if all(p in ("Succeeded", "Failed", "Cancelled") for p in phases)
            else None
        )

    units = wait_for("every unit to finish", settled, timeout=60)["units"]
    assert len(units) < 12  # the rest were never created
    assert any(u["status"]["phase"] == "Cancelled" for u in units) or len(units) <= 4


def test_units_that_fail_together_are_booked_as_they_ended(ns: str) -> None:
    # Four units that fail within moments of each other: the WorkJob stops at the first
    # and cancels the rest, but one that had already failed counts as failed.
    together = scripted(
        {"sim.workunits.io/outcome": "fail"}, {"sim.workunits.io/duration-ms": "1000"}
    )
    task = {"name": "a", "generator": {"items": [1, 2, 3, 4]}, "template": together}
    apply(workjob("together", [task], parallelism=4), ns)
    workjob_phase("together", ns, ("Failed",))

    def booked() -> dict[str, Any] | None:
        units = items("workunits", ns)
        phases = Counter((u.get("status") or {}).get("phase") for u in units)
        counts = ((get("workjob", "together", ns) or {}).get("status") or {}).get("counts", {})
        ended = phases["Failed"] + phases["Cancelled"] == 4
        return (
            {"phases": phases, "counts": counts}
            if ended and counts.get("failed", 0) + counts.get("cancelled", 0) == 4
            else None
        )

    seen = wait_for("every unit to end and be counted", booked, timeout=60)
    assert seen["counts"]["failed"] == seen["phases"]["Failed"] >= 1
    assert seen["counts"]["cancelled"] == seen["phases"]["Cancelled"]
    failures = (get("workjob", "together", ns) or {})["status"]["failures"]
    assert len(failures) == seen["phases"]["Failed"]


def test_a_rerun_reruns_only_the_failed_units_and_keeps_results(ns: str) -> None:
    task = {
        "name": "fan",
        "generator": {"items": outcomes({1, 3}, 5)},
        "template": FAILING,
        "aggregate": {"op": "collect"},
    }
    apply(workjob("again", [task], parallelism=5, failurePolicy={"maxFailed": 2}), ns)
    first = workjob_phase("again", ns, ("Succeeded",))["status"]
    assert first["counts"]["failed"] == 2
    before = {u["metadata"]["name"] for u in items("workunits", ns)}

    # The user fixes the input and bumps the re-run counter, in one patch.
    label = "/spec/tasks/0/template/spec/template/metadata/labels/sim.workunits.io~1outcome"
    kubectl(
        "patch",
        "workjob",
        "again",
        "-n",
        ns,
        "--type=json",
        "-p",
        json.dumps(
            [
                {"op": "replace", "path": label, "value": "ok"},
                {"op": "replace", "path": "/spec/rerun", "value": 1},
            ]
        ),
    )

    def rerun_done() -> dict[str, Any] | None:
        wj = get("workjob", "again", ns)
        status = (wj or {}).get("status") or {}
        ok = status.get("rerun") == 1 and status.get("phase") == "Succeeded"
        return status if ok and status["counts"]["failed"] == 0 else None

    status = wait_for("the re-run to succeed", rerun_done, timeout=120)
    assert status["counts"]["succeeded"] == 5
    created = {u["metadata"]["name"] for u in items("workunits", ns)} - before
    assert len(created) == 2 and all("-r1" in name for name in created)
    result = status["tasks"][0]["result"]
    assert result == [{"n": i} for i in range(5)]


def test_parallelism_is_never_exceeded(ns: str) -> None:
    busy = scripted(annotations={"sim.workunits.io/duration-ms": "1200"})
    task = {"name": "fan", "generator": {"range": {"end": 10}}, "template": busy}
    apply(workjob("narrow", [task], parallelism=3), ns)
    workjob_phase("narrow", ns, ("Succeeded",))

    spans = []
    for job in items("jobs", ns):
        spans.append(
            (ts(job["metadata"]["creationTimestamp"]), ts(job["status"]["completionTime"]))
        )
    assert len(spans) == 10
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    live = peak = 0
    for _, step in events:  # an end sorts before a start at the same second
        live += step
        peak = max(peak, live)
    assert peak <= 3


def test_an_etl_pipeline_fans_out_over_extracts_result(ns: str) -> None:
    files = [f"part-{i:03}.parquet" for i in range(6)]
    extract = {
        "name": "extract",
        "template": scripted(annotations={"sim.workunits.io/message": json.dumps(files)}),
    }
    transform = {
        "name": "transform",
        "dependsOn": ["extract"],
        "generator": {"fromTask": {"task": "extract"}},
        "parallelism": 2,
        "template": scripted(
            annotations={"sim.workunits.io/message": '{"file": "${item}", "rows": 1${index}}'}
        ),
        "aggregate": {"op": "sum", "field": "rows"},
    }
    load = {
        "name": "load",
        "dependsOn": ["transform"],
        "generator": {"fromTask": {"task": "transform", "reduce": True}},
        "template": scripted(annotations={"sim.workunits.io/message": '"loaded"'}),
    }
    apply(workjob("etl", [extract, transform, load], parallelism=4), ns)
    status = workjob_phase("etl", ns, ("Succeeded",))["status"]
    by_task = {t["name"]: t for t in status["tasks"]}
    assert by_task["transform"]["counts"]["succeeded"] == 6
    assert by_task["transform"]["result"] == sum(10 + i for i in range(6))
    assert status["counts"]["total"] == 8

    # The reducer got every transform result as mounted files, not through env or args.
    loader = next(u for u in items("workunits", ns) if u["metadata"]["name"].startswith("etl-load"))
    inputs = loader["spec"]["inputs"]
    assert [i["mountPath"] for i in inputs] == ["/var/run/workunits/inputs/results/0"]
    results = get("configmap", inputs[0]["configMap"], ns)
    assert results is not None
    assert {k: json.loads(v)["rows"] for k, v in results["data"].items()} == {
        str(i): 10 + i for i in range(6)
    }
    job = items("jobs", ns, f"workunits.io/unit-uid={loader['metadata']['uid']}")[0]
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == inputs[0]["configMap"]
    assert pod["containers"][0]["volumeMounts"][0]["readOnly"] is True
    assert "rows" not in json.dumps(pod["containers"][0].get("env"))


def test_deleting_the_workjob_cleans_up_every_child(ns: str) -> None:
    hang = scripted({"sim.workunits.io/outcome": "hang"})
    task = {"name": "fan", "generator": {"range": {"end": 4}}, "template": hang}
    apply(workjob("doomed", [task], parallelism=4), ns)
    wait_for("the Jobs", lambda: len(items("jobs", ns)) == 4, timeout=60)
    kubectl("delete", "workjob", "doomed", "-n", ns, "--timeout=30s")
    wait_for(
        "the units and Jobs to go",
        lambda: not items("workunits", ns) and not items("jobs", ns),
        timeout=60,
    )


def test_a_workjob_applied_again_after_an_orphaning_delete_adopts_its_units(ns: str) -> None:
    # A GitOps re-sync after `kubectl delete --cascade=orphan`: same names, new UID.
    slow = scripted(annotations={"sim.workunits.io/duration-ms": "1500"})
    body = workjob(
        "resynced",
        [{"name": "fan", "generator": {"range": {"end": 6}}, "template": slow}],
        parallelism=3,
    )
    apply(body, ns)
    wait_for("units to exist", lambda: len(items("workunits", ns)) >= 3, timeout=60)
    kubectl("delete", "workjob", "resynced", "-n", ns, "--cascade=orphan", "--timeout=30s")
    apply(body, ns)
    status = workjob_phase("resynced", ns, ("Succeeded",))["status"]
    assert status["counts"]["succeeded"] == 6
    uid = get("workjob", "resynced", ns)["metadata"]["uid"]  # type: ignore[index]
    units = items("workunits", ns)
    assert len(units) == 6
    assert all(u["metadata"]["ownerReferences"][0]["uid"] == uid for u in units)


def test_a_unit_name_taken_by_something_else_fails_the_workjob_clearly(ns: str) -> None:
    squatter = {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkUnit",
        "metadata": {"name": "taken-fan-0"},
        "spec": {"image": "busybox"},
    }
    apply(squatter, ns)
    task = {"name": "fan", "generator": {"range": {"end": 2}}, "template": scripted()}
    apply(workjob("taken", [task]), ns)
    status = workjob_phase("taken", ns, ("Failed",), timeout=60)["status"]
    assert status["reason"] == "UnitNameConflict"
    assert "taken-fan-0" in status["message"]


def test_a_generator_of_two_kinds_is_refused_naming_it(ns: str) -> None:
    template = {"spec": {"image": "busybox"}}
    body = workjob(
        "two-kinds",
        [
            {"name": "a", "generator": {"range": {"end": 2}}, "template": template},
            {"name": "b", "generator": {"items": [1], "range": {"end": 2}}, "template": template},
        ],
    )
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "spec.tasks[1].generator: " in result.stderr, result.stderr
    assert "spec.tasks[0]" not in result.stderr, result.stderr
    assert get("workjob", "two-kinds", ns) is None


def test_results_stored_before_a_restart_count_in_the_aggregate(solo_ns: str) -> None:
    # Units finish on both sides of an operator restart; the results of those before it
    # are in the results ConfigMap, and the sum and the count must include them.
    slow = scripted(
        annotations={
            "sim.workunits.io/duration-ms": "1500",
            "sim.workunits.io/message": '{"v": ${item}}',
        }
    )
    tasks = [
        {
            "name": "s",
            "generator": {"range": {"end": 40}},
            "template": slow,
            "aggregate": {"op": "sum", "field": "v"},
        },
        {
            "name": "c",
            "generator": {"range": {"end": 40}},
            "template": slow,
            "aggregate": {"op": "count"},
        },
    ]
    first = Operator("--namespace", solo_ns, name="aggregate-a").start()
    try:
        apply(workjob("restarted", tasks, parallelism=10), solo_ns)

        def some_done() -> int | None:
            status = (get("workjob", "restarted", solo_ns) or {}).get("status") or {}
            done = (status.get("counts") or {}).get("succeeded", 0)
            return done if done >= 10 else None

        wait_for("some units to succeed before the restart", some_done, timeout=60)
    finally:
        first.kill()
    with running("--namespace", solo_ns, name="aggregate-b"):
        status = workjob_phase("restarted", solo_ns, ("Succeeded", "Failed"), timeout=120)
    results = {t["name"]: t.get("result") for t in status["status"]["tasks"]}
    assert status["status"]["phase"] == "Succeeded"
    assert results == {"s": sum(range(40)), "c": 40}


def test_an_aggregate_the_status_cannot_hold_fails_the_workjob(ns: str) -> None:
    # inf would be dropped from the status without a word: a failure, named, instead.
    task = {
        "name": "huge",
        "generator": {"range": {"end": 2}},
        "template": scripted(annotations={"sim.workunits.io/message": '{"v": 1e308}'}),
        "aggregate": {"op": "sum", "field": "v"},
    }
    apply(workjob("huge", [task], parallelism=2), ns)
    status = workjob_phase("huge", ns, ("Failed", "Succeeded"))["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "AggregateFailed"), status
    assert status["message"].startswith("task huge: aggregate failed: sum: the result is inf")
    (state,) = status["tasks"]
    assert state["phase"] == "Failed" and "result" not in state
    assert state["counts"]["succeeded"] == 2, "the units keep their outcomes"
