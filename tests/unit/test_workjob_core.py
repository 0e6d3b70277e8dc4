"""The WorkJob orchestrator, driven against a small simulated cluster with a fixed clock."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tests.unit.builders import T0, at
from workunits.api.workjob import WorkJob
from workunits.api.workunit import Phase
from workunits.core.names import LABEL_INDEX, LABEL_RERUN, LABEL_TASK, MAX_NAME, unit_name
from workunits.core.ranges import IndexSet
from workunits.core.timefmt import format_time
from workunits.core.unit import Event
from workunits.core.workjob import (
    CancelUnit,
    ChildUnit,
    CreateUnit,
    DeleteUnit,
    DeleteWorkJob,
    JobDecision,
    StoreResults,
    inputs_needed,
    reconcile,
    results_config_map,
)

WJ_UID = "9f0e1c2a-aaaa-bbbb-cccc-444455556666"
Outcome = tuple[Phase, Any]  # the phase a unit ends in, and its result
Script = Callable[[str, int, int], Outcome]  # (task, index, rerun) -> outcome


def succeed_with_index(task: str, index: int, rerun: int) -> Outcome:
    return Phase.SUCCEEDED, {"i": index}


def workjob(tasks: list[dict[str, Any]], name: str = "wj", **spec: Any) -> WorkJob:
    full = []
    for t in tasks:
        template = t.pop("template", {"spec": {"image": "busybox"}})
        full.append({"template": template, **t})
    return WorkJob.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": WJ_UID,
                "generation": 1,
                "creationTimestamp": format_time(T0),
            },
            "spec": {"tasks": full, **spec},
        }
    )


class ConfigMaps(Mapping[str, Any]):
    """Every ConfigMap counts as loaded; one that was never written is None."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, str] | None] = {}

    def __getitem__(self, name: str) -> Any:
        return self.data.get(name)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class Sim:
    """Applies decisions the way the handlers would; units end when told to."""

    def __init__(self, job: WorkJob, script: Script = succeed_with_index) -> None:
        self.job = job
        self.script = script
        self.units: dict[str, ChildUnit] = {}
        self.config_maps = ConfigMaps()
        self.now = 0.0
        self.max_live = 0
        self.max_live_per_task: dict[str, int] = {}
        self.created: list[CreateUnit] = []
        self.decision: JobDecision | None = None
        self.hidden: set[str] = set()  # created, but not yet seen by the "cache"
        self.events: list[Event] = []

    def edit(self, changes: dict[str, Any]) -> None:
        """Change the WorkJob's spec, as a person would."""
        self.job = self.job.model_copy(update={"spec": self.job.spec.model_copy(update=changes)})

    def step(self, dt: float = 1) -> JobDecision:
        self.now += dt
        seen = [u for n, u in self.units.items() if n not in self.hidden]
        d = reconcile(self.job, seen, self.config_maps, at(self.now))
        for action in d.actions:
            if isinstance(action, CreateUnit):
                if action.name not in self.units:
                    self.created.append(action)
                    self.units[action.name] = ChildUnit(
                        task=action.labels[LABEL_TASK],
                        index=int(action.labels[LABEL_INDEX]),
                        name=action.name,
                        phase=Phase.RUNNING,
                        rerun=int(action.labels[LABEL_RERUN]),
                        created=at(self.now),
                    )
            elif isinstance(action, CancelUnit):
                unit = self.units[action.name]
                self.units[action.name] = dataclasses.replace(
                    unit, phase=Phase.CANCELLED, cancel_requested=True
                )
            elif isinstance(action, DeleteUnit):
                self.units.pop(action.name, None)
            elif isinstance(action, StoreResults):
                self.config_maps.data[action.config_map] = {
                    **(self.config_maps.data.get(action.config_map) or {}),
                    **action.data,
                }
        self.job = self.job.model_copy(update={"status": d.status})
        live = [u for u in self.units.values() if not u.finished]
        self.max_live = max(self.max_live, len(live))
        for task, n in Counter(u.task for u in live).items():
            self.max_live_per_task[task] = max(self.max_live_per_task.get(task, 0), n)
        self.events += of(d, Event)
        self.decision = d
        return d

    def finish(self, count: int | None = None) -> None:
        """End the running units (oldest first), as the script says."""
        running = [u for u in self.units.values() if u.phase is Phase.RUNNING]
        for unit in running[:count]:
            phase, result = self.script(unit.task, unit.index, unit.rerun)
            self.units[unit.name] = dataclasses.replace(
                unit,
                phase=phase,
                result=result if phase is Phase.SUCCEEDED else None,
                reason="Error" if phase is Phase.FAILED else None,
                message="exit code 1" if phase is Phase.FAILED else None,
            )

    def run(self, limit: int = 500, delete_finished: bool = False) -> WorkJob:
        for _ in range(limit):
            self.step()
            if Phase(self.job.status.phase or Phase.PENDING).finished:
                return self.job
            self.finish()
            if delete_finished:
                # The units' own TTL: finished units vanish once the WorkJob has seen them.
                for name, unit in list(self.units.items()):
                    if unit.finished and self.seen_finished(unit):
                        del self.units[name]
        raise AssertionError("the WorkJob did not finish")

    def seen_finished(self, unit: ChildUnit) -> bool:
        state = next(t for t in self.job.status.tasks if t.name == unit.task)
        return any(unit.index in IndexSet(r) for r in (state.succeeded, state.failed))

    def task(self, name: str) -> Any:
        return next(t for t in self.job.status.tasks if t.name == name)


def creates(d: JobDecision) -> list[str]:
    return [a.name for a in d.actions if isinstance(a, CreateUnit)]


def of(d: JobDecision, kind: type) -> list[Any]:
    return [a for a in d.actions if isinstance(a, kind)]


def cond(job: WorkJob, kind: str) -> str:
    return next(c.status for c in job.status.conditions if c.type == kind)


# ---- a simple fan-out ---------------------------------------------------------------


def test_a_fan_out_creates_lazily_and_succeeds() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 5}}}], parallelism=2))
    d = sim.step()
    assert creates(d) == ["wj-t-0", "wj-t-1"]
    assert sim.job.status.phase is Phase.RUNNING
    assert sim.job.status.counts.pending == 5, "created, not seen running yet"
    assert creates(sim.step()) == []
    assert sim.job.status.counts.running == 2 and sim.job.status.counts.pending == 3
    assert sim.job.status.progress == "0/5"
    assert cond(sim.job, "Running") == "True" and cond(sim.job, "Reconciling") == "True"

    job = sim.run()
    assert job.status.phase is Phase.SUCCEEDED
    assert job.status.progress == "5/5" and job.status.counts.succeeded == 5
    assert sim.task("t").succeeded == [[0, 5]]
    assert sim.max_live == 2
    assert job.status.completion_time and job.status.eta is None
    assert cond(job, "Succeeded") == "True" and cond(job, "Ready") == "True"
    assert cond(job, "Reconciling") == "False" and job.status.observed_generation == 1


def test_unit_spec_labels_and_parameters() -> None:
    job = workjob(
        [
            {
                "name": "t",
                "generator": {"items": [{"f": "a.csv"}]},
                "template": {
                    "metadata": {"labels": {"team": "x"}},
                    "spec": {"image": "busybox", "args": ["${item.f}"], "priority": 5},
                },
            }
        ]
    )
    (create,) = of(reconcile(job, [], {}, at(0)), CreateUnit)
    assert create.spec["args"] == ["a.csv"]
    assert create.spec["parameters"] == {"WORKUNIT_ITEM": '{"f":"a.csv"}', "WORKUNIT_INDEX": "0"}
    assert create.labels["team"] == "x" and create.labels[LABEL_TASK] == "t"
    assert create.labels[LABEL_INDEX] == "0" and create.labels[LABEL_RERUN] == "0"
    assert create.priority == 5


def test_a_task_without_generator_is_one_unit_and_an_empty_one_none() -> None:
    job = workjob([{"name": "one"}, {"name": "none", "generator": {"items": []}}])
    sim = Sim(job)
    assert creates(sim.step()) == ["wj-one-0"]
    assert sim.run().status.phase is Phase.SUCCEEDED
    assert sim.task("none").counts.total == 0 and sim.task("none").phase is Phase.SUCCEEDED


# ---- scheduling order and parallelism ----------------------------------------------

ORDER_CASES = [
    (
        "workjob parallelism caps all tasks",
        {"parallelism": 3},
        {},
        {},
        ["wj-a-0", "wj-a-1", "wj-a-2"],
    ),
    (
        "task parallelism caps its task",
        {"parallelism": 4},
        {"parallelism": 1},
        {},
        ["wj-a-0", "wj-b-0", "wj-b-1", "wj-b-2"],
    ),
    (
        "both limits",
        {"parallelism": 3},
        {"parallelism": 2},
        {"parallelism": 2},
        ["wj-a-0", "wj-a-1", "wj-b-0"],
    ),
    (
        "higher priority first",
        {"parallelism": 3},
        {},
        {"priority": 1},
        ["wj-b-0", "wj-b-1", "wj-b-2"],
    ),
]


@pytest.mark.parametrize(
    ("job_spec", "a", "b", "expected"),
    [c[1:] for c in ORDER_CASES],
    ids=[c[0] for c in ORDER_CASES],
)
def test_scheduling_order(
    job_spec: dict[str, Any], a: dict[str, Any], b: dict[str, Any], expected: list[str]
) -> None:
    def t(name: str, extra: dict[str, Any]) -> dict[str, Any]:
        spec = {"image": "x", "priority": extra.get("priority", 0)}
        task: dict[str, Any] = {
            "name": name,
            "generator": {"range": {"end": 5}},
            "template": {"spec": spec},
        }
        if "parallelism" in extra:
            task["parallelism"] = extra["parallelism"]
        return task

    job = workjob([t("a", a), t("b", b)], **job_spec)
    assert creates(reconcile(job, [], {}, at(0))) == expected


@pytest.mark.parametrize(
    ("total", "parallelism", "task_parallelism"),
    [(10, 3, None), (10, 5, 2), (7, 100, None), (30, 4, 3)],
    ids=["workjob 3", "task 2 under workjob 5", "all at once", "task 3"],
)
def test_parallelism_is_never_exceeded(
    total: int, parallelism: int, task_parallelism: int | None
) -> None:
    task: dict[str, Any] = {"name": "t", "generator": {"range": {"end": total}}}
    if task_parallelism:
        task["parallelism"] = task_parallelism
    sim = Sim(workjob([task], parallelism=parallelism))
    for _ in range(total * 3):
        sim.step()
        sim.finish(1)  # one unit at a time ends: the window refills one by one
    assert sim.job.status.phase is Phase.SUCCEEDED
    assert sim.max_live == min(total, parallelism, task_parallelism or total)
    assert sim.max_live_per_task["t"] <= (task_parallelism or total)
    assert [c.index for c in sim.created] == list(range(total)), "index order"


def test_a_task_waits_for_the_tasks_it_depends_on() -> None:
    sim = Sim(
        workjob(
            [{"name": "b", "dependsOn": ["a"]}, {"name": "a", "generator": {"range": {"end": 2}}}]
        )
    )
    assert creates(sim.step()) == ["wj-a-0", "wj-a-1"]
    assert sim.task("b").phase is Phase.BLOCKED and sim.task("b").counts.blocked == 1
    sim.finish(1)
    assert creates(sim.step()) == []
    sim.finish()
    assert creates(sim.step()) == ["wj-b-0"]
    assert sim.run().status.phase is Phase.SUCCEEDED


def test_units_not_seen_yet_count_against_parallelism_and_are_asked_for_again() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 10}}}], parallelism=3))
    sim.step()
    sim.hidden = set(sim.units)  # the cache lags behind
    d = sim.step()
    assert sorted(creates(d)) == ["wj-t-0", "wj-t-1", "wj-t-2"], "the same three, no more"
    assert sim.job.status.counts.pending == 10


# ---- the ETL shape: fromTask and aggregates ---------------------------------------


def etl_script(task: str, index: int, rerun: int) -> Outcome:
    if task == "extract":
        return Phase.SUCCEEDED, ["a.csv", "b.csv", "c.csv"]
    if task == "transform":
        return Phase.SUCCEEDED, {"rows": 10 * (index + 1)}
    return Phase.SUCCEEDED, "loaded"


def test_etl_extract_fan_out_over_its_result_then_load() -> None:
    job = workjob(
        [
            {"name": "extract"},
            {
                "name": "transform",
                "dependsOn": ["extract"],
                "generator": {"fromTask": {"task": "extract"}},
                "template": {"spec": {"image": "x", "args": ["--file=${item}"]}},
                "aggregate": {"op": "sum", "field": "rows"},
            },
            {"name": "load", "dependsOn": ["transform"], "aggregate": {"op": "collect"}},
        ]
    )
    sim = Sim(job, etl_script)
    done = sim.run()
    assert done.status.phase is Phase.SUCCEEDED
    transform = [c for c in sim.created if c.task == "transform"]
    assert [c.spec["args"] for c in transform] == [
        ["--file=a.csv"],
        ["--file=b.csv"],
        ["--file=c.csv"],
    ]
    assert sim.task("transform").result == 60
    assert sim.task("load").result == ["loaded"]
    assert sim.task("extract").result is None, "no aggregate asked for"
    assert done.status.counts.total == 5


def test_a_failed_aggregate_fails_the_workjob_not_its_units() -> None:
    job = workjob(
        [
            {
                "name": "t",
                "generator": {"range": {"end": 2}},
                "aggregate": {"op": "sum", "field": "i"},
            },
            {"name": "u", "generator": {"items": ["x"]}, "aggregate": {"op": "sum"}},
        ]
    )
    sim = Sim(job, lambda task, i, r: (Phase.SUCCEEDED, {"i": i} if task == "t" else "text"))
    done = sim.run()
    status = done.status
    assert (status.phase, status.reason) == (Phase.FAILED, "AggregateFailed")
    assert status.message == (
        "task u: aggregate failed: sum: the result of unit 0 is a string, not a number"
    )
    assert cond(done, "Failed") == "True" and cond(done, "Succeeded") == "False"
    assert (status.counts.succeeded, status.counts.failed, status.progress) == (3, 0, "3/3")
    assert sim.task("t").result == 1 and sim.task("t").phase is Phase.SUCCEEDED
    assert sim.task("u").phase is Phase.FAILED and sim.task("u").result is None
    assert "aggregate failed: sum: the result of unit 0 is a string" in sim.task("u").message
    assert [e.reason for e in sim.events if e.reason != "Started"] == [
        "TaskSucceeded",
        "AggregateFailed",
        "AggregateFailed",
    ], "the task's failure when it happens, then the WorkJob's end; u never succeeded"


def test_a_rerun_puts_a_failed_aggregate_together_again() -> None:
    task = {"name": "t", "generator": {"range": {"end": 2}}, "aggregate": {"op": "mean"}}
    sim = Sim(workjob([task]), lambda task, i, r: (Phase.SUCCEEDED, {"i": i}))
    assert sim.run().status.reason == "AggregateFailed", "mean of objects"

    # Fixed in the spec, then re-run: no unit runs again, the aggregate is recomputed.
    fixed = {
        **task,
        "template": {"spec": {"image": "busybox"}},
        "aggregate": {"op": "mean", "field": "i"},
    }
    spec = workjob([fixed]).spec.model_copy(update={"rerun": 1})
    sim.job = sim.job.model_copy(update={"spec": spec})
    done = sim.run()
    assert (done.status.phase, done.status.reason) == (Phase.SUCCEEDED, "Succeeded")
    assert sim.task("t").result == 0.5 and sim.task("t").message is None
    assert len(sim.created) == 2


def test_an_aggregate_json_cannot_hold_fails_with_a_message_not_silently() -> None:
    job = workjob(
        [
            {
                "name": "t",
                "generator": {"items": [{"v": 1e308}, {"v": 1e308}]},
                "aggregate": {"op": "sum", "field": "v"},
            }
        ]
    )
    sim = Sim(job, lambda task, i, r: (Phase.SUCCEEDED, {"v": 1e308}))
    sim.run()
    state = sim.task("t")
    assert state.aggregated and state.result is None and state.result_ref is None
    assert state.message is not None and state.message.startswith(
        "aggregate failed: sum: the result is inf"
    )


def test_a_large_aggregate_goes_to_config_maps_in_parts() -> None:
    job = workjob(
        [{"name": "t", "generator": {"range": {"end": 30}}, "aggregate": {"op": "collect"}}],
        parallelism=30,
    )
    sim = Sim(job, lambda task, i, r: (Phase.SUCCEEDED, "x" * 40_000))
    sim.run()
    state = sim.task("t")
    assert state.result is None and state.result_ref is not None
    ref = state.result_ref
    parts = [ref.config_map, *(ref.more or [])]
    assert len(parts) == 3
    text = "".join(sim.config_maps.data[p]["result"] for p in parts)  # type: ignore[index]
    assert len(text.encode()) == ref.bytes and json.loads(text) == ["x" * 40_000] * 30


def test_results_not_loaded_are_asked_for() -> None:
    job = workjob([{"name": "t", "generator": {"range": {"end": 1}}, "aggregate": {"op": "count"}}])
    sim = Sim(job)
    sim.step()
    sim.finish()
    sim.step()
    assert sim.job.status.phase is Phase.SUCCEEDED
    # The same moment, without the results ConfigMap loaded: the decision asks for it.
    assert inputs_needed(job) == set()
    d = reconcile(
        sim.job.model_copy(
            update={
                "status": sim.job.status.model_copy(update={"phase": Phase.RUNNING, "tasks": []})
            }
        ),
        list(sim.units.values()),
        {},
        at(9),
    )
    assert d.wanted == {results_config_map(job, "t", 0)}


# ---- failures ------------------------------------------------------------------------


def fail_some(*failing: int) -> Script:
    def script(task: str, index: int, rerun: int) -> Outcome:
        if index in failing and rerun == 0:
            return Phase.FAILED, None
        return Phase.SUCCEEDED, {"i": index}

    return script


BUDGET_CASES = [
    ("fail fast by default", None, (3,), Phase.FAILED),
    ("count within budget", 2, (3, 7), Phase.SUCCEEDED),
    ("count over budget", 2, (3, 7, 9), Phase.FAILED),
    ("percent within budget", "10%", (1, 5), Phase.SUCCEEDED),
    ("percent over budget", "10%", (1, 5, 8), Phase.FAILED),
    ("fractional percent rounds down", "7.5%", (1, 5), Phase.FAILED),
]


@pytest.mark.parametrize(
    ("budget", "failing", "phase"), [c[1:] for c in BUDGET_CASES], ids=[c[0] for c in BUDGET_CASES]
)
def test_failure_budget(budget: int | str | None, failing: tuple[int, ...], phase: Phase) -> None:
    spec: dict[str, Any] = {"parallelism": 4}
    if budget is not None:
        spec["failurePolicy"] = {"maxFailed": budget}
    sim = Sim(
        workjob([{"name": "t", "generator": {"range": {"end": 20}}}], **spec), fail_some(*failing)
    )
    done = sim.run()
    assert done.status.phase is phase
    failures = done.status.failures
    assert [f.index for f in failures] == sorted(failures_seen := [f.index for f in failures])
    assert set(failures_seen) <= set(failing)
    assert all(f.unit == f"wj-t-{f.index}" and f.reason == "Error" for f in failures)
    if phase is Phase.FAILED:
        assert done.status.reason == "FailureBudgetExceeded"
        assert cond(done, "Failed") == "True" and cond(done, "Stalled") == "True"
        assert done.status.counts.total == 20
        assert done.status.counts.running == 0 and done.status.counts.pending == 0
    else:
        assert done.status.counts.failed == len(failing)
        assert "within the failure budget" in (done.status.message or "")


def test_on_failure_the_rest_is_cancelled_and_nothing_new_created() -> None:
    sim = Sim(
        workjob([{"name": "t", "generator": {"range": {"end": 10}}}], parallelism=3), fail_some(0)
    )
    sim.step()
    sim.finish(1)  # unit 0 fails while 1 and 2 run
    d = sim.step()
    assert sim.job.status.phase is Phase.FAILED
    assert sorted(a.name for a in of(d, CancelUnit)) == ["wj-t-1", "wj-t-2"]
    assert creates(d) == []
    sim.step()  # they end Cancelled
    assert sim.task("t").cancelled == [[1, 3]]
    counts = sim.job.status.counts
    assert (counts.failed, counts.cancelled, counts.not_run) == (1, 2, 7)
    assert sim.job.status.progress == "3/10", "units never created are not done"
    d = sim.step()
    assert of(d, CancelUnit) == [] and creates(d) == [], "nothing more to do"


def test_rerun_recreates_failed_units_and_keeps_results() -> None:
    job = workjob(
        [
            {
                "name": "t",
                "generator": {"range": {"end": 6}},
                "aggregate": {"op": "sum", "field": "i"},
            }
        ],
        parallelism=6,
        failurePolicy={"maxFailed": 2},
    )
    sim = Sim(job, fail_some(1, 4))
    done = sim.run()
    assert done.status.phase is Phase.SUCCEEDED and sim.task("t").result == 0 + 2 + 3 + 5
    assert sim.task("t").failed == [[1, 2], [4, 5]]

    sim.job = done.model_copy(update={"spec": done.spec.model_copy(update={"rerun": 1})})
    d = sim.step()
    assert sorted(a.name for a in of(d, DeleteUnit)) == ["wj-t-1", "wj-t-4"]
    assert creates(d) == ["wj-t-1-r1", "wj-t-4-r1"]
    assert sim.job.status.phase is Phase.RUNNING and sim.job.status.rerun == 1
    assert sim.job.status.failures == []
    done = sim.run()
    assert done.status.phase is Phase.SUCCEEDED
    assert sim.task("t").succeeded == [[0, 6]] and sim.task("t").failed == []
    assert sim.task("t").result == 15
    assert [c.name for c in sim.created].count("wj-t-0") == 1, "succeeded units not re-run"


def test_the_eta_of_a_rerun_leaves_out_the_time_the_workjob_sat_finished() -> None:
    job = workjob(
        [{"name": "t", "generator": {"range": {"end": 6}}}],
        parallelism=6,
        failurePolicy={"maxFailed": 2},
    )
    sim = Sim(job, fail_some(4, 5))
    sim.step()  # t=1: six units start
    sim.finish()
    sim.step(10)  # t=11: 4 succeeded, 2 failed, within the budget
    assert sim.job.status.phase is Phase.SUCCEEDED
    sim.edit({"rerun": 1})
    sim.step(3600)  # t=3611: re-run an hour later
    assert sim.job.status.phase is Phase.RUNNING
    assert sim.job.status.held_seconds == 3600
    assert sim.job.status.eta == format_time(at(3611 + 5)), "2 left at 4 per 10s: 5s"


def test_rerun_of_a_failed_job_runs_cancelled_and_never_created_units() -> None:
    sim = Sim(
        workjob([{"name": "t", "generator": {"range": {"end": 5}}}], parallelism=3), fail_some(0)
    )
    sim.step()
    sim.finish(1)
    sim.step()
    sim.step()  # the running ones end Cancelled
    assert sim.job.status.phase is Phase.FAILED and sim.task("t").cancelled == [[1, 3]]
    sim.edit({"rerun": 1})
    done = sim.run()
    assert done.status.phase is Phase.SUCCEEDED and done.status.counts.succeeded == 5
    assert [c.name for c in sim.created[3:]] == [
        "wj-t-0-r1",
        "wj-t-1-r1",
        "wj-t-2-r1",
        "wj-t-3",
        "wj-t-4",
    ]


def cancelled_after_one(end: int) -> Sim:
    """A WorkJob of ``end`` units, three at once, cancelled once unit 0 succeeded: units 1
    and 2 end Cancelled, the rest are never created."""
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": end}}}], parallelism=3))
    sim.step()
    sim.finish(1)
    sim.edit({"cancel": True})
    sim.step()
    sim.finish()  # the two running units end Cancelled
    sim.step()
    return sim


def test_rerun_of_a_cancelled_job_waits_for_cancel_to_be_cleared() -> None:
    sim = cancelled_after_one(6)
    assert sim.job.status.phase is Phase.CANCELLED and sim.task("t").cancelled == [[1, 3]]

    # Raised with spec.cancel still true: nothing is deleted or created, and it says why.
    sim.edit({"rerun": 1})
    d = sim.step()
    assert of(d, DeleteUnit) == [] and creates(d) == []
    assert sim.job.status.phase is Phase.CANCELLED and sim.job.status.rerun == 0
    assert sim.job.status.message == "re-run 1 waits: clear spec.cancel to re-run"
    assert [(e.reason, e.message) for e in of(d, Event)] == [("RerunHeld", sim.job.status.message)]
    assert sim.task("t").cancelled == [[1, 3]]
    assert of(sim.step(), Event) == [], "said once"

    # Cleared: the pending re-run runs the cancelled units and those never created.
    sim.edit({"cancel": False})
    done = sim.run()
    assert done.status.phase is Phase.SUCCEEDED and done.status.rerun == 1
    assert done.status.counts.succeeded == 6 and done.status.counts.not_run == 0
    assert sorted(c.name for c in sim.created[3:]) == [
        "wj-t-1-r1",
        "wj-t-2-r1",
        "wj-t-3",
        "wj-t-4",
        "wj-t-5",
    ]


def test_rerun_while_running_waits_for_the_end() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 2}}}]))
    sim.step()
    sim.edit({"rerun": 1})
    sim.step()
    assert sim.job.status.rerun == 0


# ---- cancel, suspend, TTL -----------------------------------------------------------


def test_cancel_cancels_every_unfinished_unit() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 10}}}], parallelism=3))
    sim.step()
    sim.finish(1)
    sim.edit({"cancel": True})
    d = sim.step()
    assert sim.job.status.phase is Phase.CANCELLED
    assert sorted(a.name for a in of(d, CancelUnit)) == ["wj-t-1", "wj-t-2"]
    assert creates(d) == []
    sim.step()  # they end Cancelled
    assert sim.job.status.counts.succeeded == 1 and sim.job.status.counts.cancelled == 2
    assert cond(sim.job, "Failed") == "True"


def test_units_that_failed_before_the_cancel_reached_them_count_as_failed() -> None:
    # Units that fail together: the WorkJob sees the first, stops, and tells the others
    # to cancel, but they had already failed on their own.
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 4}}}], parallelism=4))
    sim.step()
    sim.units["wj-t-0"] = dataclasses.replace(sim.units["wj-t-0"], phase=Phase.FAILED)
    d = sim.step()
    assert sim.job.status.phase is Phase.FAILED
    assert sorted(a.name for a in of(d, CancelUnit)) == ["wj-t-1", "wj-t-2", "wj-t-3"]
    for name in ("wj-t-1", "wj-t-2", "wj-t-3"):  # failed before the cancel arrived
        sim.units[name] = dataclasses.replace(sim.units[name], phase=Phase.FAILED)
    sim.step()
    counts = sim.job.status.counts
    assert (counts.failed, counts.cancelled, counts.not_run) == (4, 0, 0)
    assert sim.task("t").failed == [[0, 4]]
    assert sorted(f.unit for f in sim.job.status.failures) == [f"wj-t-{i}" for i in range(4)]


def test_units_the_workjob_cancelled_itself_are_not_listed_as_failures() -> None:
    # The failure sample names what made the WorkJob fail, not the units it then stopped.
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 4}}}], parallelism=4))
    sim.step()
    sim.units["wj-t-0"] = dataclasses.replace(sim.units["wj-t-0"], phase=Phase.FAILED)
    sim.units["wj-t-1"] = dataclasses.replace(sim.units["wj-t-1"], phase=Phase.CANCELLED)
    sim.step()  # wj-t-1 was cancelled by someone else before the WorkJob stopped
    assert sim.job.status.phase is Phase.FAILED
    d = sim.step()  # wj-t-2 and wj-t-3 ended Cancelled, as the WorkJob told them
    counts = sim.job.status.counts
    assert (counts.failed, counts.cancelled) == (1, 3)
    assert sorted(f.unit for f in sim.job.status.failures) == ["wj-t-0", "wj-t-1"]
    assert [e for e in of(d, Event) if e.reason == "UnitFailed"] == []


def test_a_task_that_finished_clean_is_succeeded_when_another_fails_the_workjob() -> None:
    tasks = [
        {"name": "a", "generator": {"range": {"end": 3}}, "aggregate": {"op": "count"}},
        {"name": "b", "generator": {"range": {"end": 3}}},
    ]

    def b_fails(task: str, index: int, rerun: int) -> Outcome:
        return (Phase.FAILED, None) if task == "b" else (Phase.SUCCEEDED, {"i": index})

    sim = Sim(workjob(tasks, parallelism=6), b_fails)
    sim.step()
    sim.finish()  # a's units and b's end at once: one reconcile sees both
    sim.step()
    assert sim.job.status.phase is Phase.FAILED
    phases = {t.name: t.phase for t in sim.job.status.tasks}
    assert phases == {"a": Phase.SUCCEEDED, "b": Phase.FAILED}
    assert sim.task("a").result == 3


def test_a_cancelled_workjob_counts_units_never_created_as_not_run() -> None:
    sim = cancelled_after_one(10)
    counts = sim.job.status.counts
    assert (counts.succeeded, counts.cancelled, counts.not_run) == (1, 2, 7)
    assert sim.job.status.progress == "3/10"
    (task,) = sim.job.status.tasks
    assert (task.counts.cancelled, task.counts.not_run) == (2, 7)
    assert sim.job.status.eta is None


def test_an_eta_past_any_date_is_left_out() -> None:
    # One unit done in 12 days, a million to go: 30,000 years away, past the calendar.
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 10**6}}}], parallelism=1))
    sim.step()
    sim.finish()
    sim.step(12 * 86400)
    assert sim.job.status.counts.succeeded == 1 and sim.job.status.progress == "1/1000000"
    assert sim.job.status.eta is None


def test_suspend_holds_new_units_and_resume_goes_on() -> None:
    job = workjob([{"name": "t", "generator": {"range": {"end": 4}}}], parallelism=2, suspend=True)
    sim = Sim(job)
    assert creates(sim.step()) == []
    assert sim.job.status.phase is Phase.PENDING and sim.job.status.reason == "Suspended"
    sim.edit({"suspend": False})
    assert creates(sim.step()) == ["wj-t-0", "wj-t-1"]
    sim.edit({"suspend": True})
    sim.finish()
    assert creates(sim.step()) == [], "running ones finish, no new ones start"
    assert sim.job.status.counts.succeeded == 2


def test_a_suspended_workjob_says_so_and_promises_no_eta() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 6}}}], parallelism=2))
    sim.step()
    sim.finish()
    sim.step()  # 2 of 6 done, 2 running: an ETA from the pace so far
    assert sim.job.status.eta is not None
    sim.edit({"suspend": True})
    sim.step()
    status = sim.job.status
    assert (status.phase, status.reason) == (Phase.RUNNING, "Suspended"), "running ones go on"
    assert status.eta is None
    sim.finish()
    sim.step()
    status = sim.job.status
    assert (status.phase, status.reason, status.progress) == (Phase.PENDING, "Suspended", "4/6")
    assert status.eta is None
    sim.edit({"suspend": False})
    sim.step()
    assert sim.job.status.reason is None and sim.job.status.eta is not None


def test_the_eta_after_a_resume_leaves_out_the_time_it_was_held() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 6}}}], parallelism=2))
    sim.step()  # t=1: two units start
    sim.finish()
    sim.step(10)  # t=11: 2 of 6 done in 10s
    sim.edit({"suspend": True})
    sim.finish()
    sim.step()  # t=12: 4 of 6 done in 11s, nothing runs: held from here
    assert sim.job.status.phase is Phase.PENDING
    sim.step(3600)  # t=3612: still held
    sim.edit({"suspend": False})
    sim.step(1)  # t=3613: resumed after 3601s held; 11s of running for 4 units
    assert sim.job.status.held_seconds == 3601 and sim.job.status.held_since is None
    assert sim.job.status.eta == format_time(at(3613 + 6)), "2 left at 4 per 11s: 6s"


def test_a_suspended_workjobs_tasks_run_only_while_their_units_do() -> None:
    tasks = [
        {"name": "a", "generator": {"range": {"end": 4}}, "parallelism": 1},
        {"name": "b", "generator": {"range": {"end": 4}}, "parallelism": 1},
    ]
    sim = Sim(workjob(tasks, parallelism=2))
    sim.step()
    sim.finish(1)  # a's unit ends, b's goes on
    sim.edit({"suspend": True})
    sim.step()
    phases = {t.name: t.phase for t in sim.job.status.tasks}
    assert sim.job.status.phase is Phase.RUNNING
    assert phases == {"a": Phase.PENDING, "b": Phase.RUNNING}
    sim.finish()
    sim.step()
    phases = {t.name: t.phase for t in sim.job.status.tasks}
    assert sim.job.status.phase is Phase.PENDING
    assert phases == {"a": Phase.PENDING, "b": Phase.PENDING}, "none runs while it is held"
    sim.edit({"suspend": False})
    sim.step()
    phases = {t.name: t.phase for t in sim.job.status.tasks}
    assert sim.job.status.phase is Phase.RUNNING
    assert phases == {"a": Phase.RUNNING, "b": Phase.RUNNING}


def test_ttl_after_finished() -> None:
    sim = Sim(workjob([{"name": "t"}], ttlSecondsAfterFinished=60))
    done = sim.run()
    finished = sim.now
    assert of(sim.decision, DeleteWorkJob) == []  # type: ignore[arg-type]
    assert sim.decision.wake_at == at(finished + 60)  # type: ignore[union-attr]
    d = reconcile(done, list(sim.units.values()), sim.config_maps, at(finished + 60))
    assert of(d, DeleteWorkJob) == [DeleteWorkJob("ttlSecondsAfterFinished")]


# ---- what survives deleted units -------------------------------------------------------


def test_counts_and_results_survive_units_deleted_after_they_finish() -> None:
    job = workjob(
        [
            {
                "name": "t",
                "generator": {"range": {"end": 12}},
                "aggregate": {"op": "collect", "field": "i"},
            }
        ],
        parallelism=4,
        failurePolicy={"maxFailed": 1},
    )
    sim = Sim(job, fail_some(5))
    done = sim.run(delete_finished=True)
    assert done.status.phase is Phase.SUCCEEDED
    assert done.status.counts.succeeded == 11 and done.status.counts.failed == 1
    assert sim.task("t").result == [i for i in range(12) if i != 5]
    assert len(sim.created) == 12, "no unit created twice"


def test_a_unit_deleted_while_running_is_created_again() -> None:
    sim = Sim(workjob([{"name": "t", "generator": {"range": {"end": 3}}}], parallelism=3))
    sim.step()
    del sim.units["wj-t-1"]
    d = sim.step()
    assert creates(d) == ["wj-t-1"]
    assert sim.run().status.phase is Phase.SUCCEEDED


# ---- invalid specs and inputs --------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "reason", "message"),
    [
        (
            [{"name": "a", "dependsOn": ["b"]}, {"name": "b", "dependsOn": ["a"]}],
            "InvalidSpec",
            "cycle: a -> b -> a",
        ),
        (
            [
                {
                    "name": "a",
                    "generator": {"items": [{"x": 1}]},
                    "template": {"spec": {"image": "x", "args": ["${item.y}"]}},
                }
            ],
            "InvalidSpec",
            "task a, unit 0: ${item.y}: item has no 'y'",
        ),
        (
            [{"name": "a", "generator": {"configMap": {"name": "in", "key": "k"}}}],
            "InvalidInput",
            "task a: ConfigMap in key k holds a JSON object, not a list",
        ),
    ],
    ids=["dependency cycle", "unknown placeholder", "configMap not a list"],
)
def test_invalid_specs_fail_the_workjob(
    tasks: list[dict[str, Any]], reason: str, message: str
) -> None:
    sim = Sim(workjob(tasks))
    sim.config_maps.data["in"] = {"k": "{}"}
    d = sim.step()
    assert sim.job.status.phase is Phase.FAILED and sim.job.status.reason == reason
    assert message in (sim.job.status.message or "")
    assert creates(d) == []


def test_a_missing_config_map_is_waited_for() -> None:
    sim = Sim(workjob([{"name": "a", "generator": {"configMap": {"name": "in", "key": "k"}}}]))
    d = sim.step()
    assert sim.job.status.phase is Phase.PENDING
    assert sim.task("a").message == "ConfigMap in (key k) was not found"
    assert d.wake_at == at(sim.now + 30)
    sim.config_maps.data["in"] = {"k": '["x", "y"]'}
    assert creates(sim.step()) == ["wj-a-0", "wj-a-1"]
    assert sim.task("a").message is None


def test_unit_names_stay_within_63_characters_and_unique() -> None:
    long = "w" * 60
    names = {unit_name(long, "t" * 30, i, r) for i in range(50) for r in (0, 1, 2)}
    assert len(names) == 150 and all(len(n) <= MAX_NAME for n in names)
    assert unit_name("wj", "t", 3) == "wj-t-3" and unit_name("wj", "t", 3, 2) == "wj-t-3-r2"


# ---- C21: the status of a very large fan-out ------------------------------------------


def test_status_of_20000_units_stays_small() -> None:
    name = "n" * 60
    job = workjob(
        [
            {
                "name": "sweep",
                "generator": {"range": {"end": 20_000}},
                "aggregate": {"op": "collect"},
            }
        ],
        name=name,
        parallelism=2_000,
        failurePolicy={"maxFailed": "1%"},
    )
    payload = "r" * 90

    def script(task: str, index: int, rerun: int) -> Outcome:
        if index % 1000 == 7:
            return Phase.FAILED, None
        return Phase.SUCCEEDED, {"v": payload}  # about 100 bytes of JSON

    sim = Sim(job, script)
    done = sim.run(delete_finished=True)
    assert done.status.phase is Phase.SUCCEEDED
    assert done.status.counts.succeeded == 19_980 and done.status.counts.failed == 20
    assert all(len(c.name) <= MAX_NAME for c in sim.created)

    size = len(json.dumps(done.status.dump()))
    assert size < 20_000, f"status is {size} bytes"
    assert len(done.status.failures) == 20
    state = sim.task("sweep")
    assert state.result is None and state.result_ref is not None  # about 2 MB, by reference
    assert len(state.result_ref.more or []) >= 3
    # Results travel in ConfigMaps, each well under the 1 MiB limit.
    assert all(len(json.dumps(d)) < 1024 * 1024 for d in sim.config_maps.data.values())


def test_aggregates_take_only_succeeded_units_and_count_only_results() -> None:
    # Unit 1 fails (within the budget); unit 3 succeeds without reporting a result.
    def script(task: str, index: int, rerun: int) -> Outcome:
        if index == 1:
            return Phase.FAILED, None
        return Phase.SUCCEEDED, None if index == 3 else {"i": index}

    tasks = [
        {"name": op, "generator": {"range": {"end": 5}}, "aggregate": {"op": op}}
        for op in ("collect", "count")
    ]
    sim = Sim(workjob(tasks, failurePolicy={"maxFailed": 2}), script)
    assert sim.run().status.phase is Phase.SUCCEEDED
    # In index order, the failed unit left out, null for the one without a result.
    assert sim.task("collect").result == [{"i": 0}, {"i": 2}, None, {"i": 4}]
    assert sim.task("count").result == 3
