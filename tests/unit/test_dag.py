"""The task graph: refused when it cannot run, else put in a runnable order."""

from __future__ import annotations

from typing import Any

import pytest

from workunits.api.workjob import Task
from workunits.core.dag import DagError, find_cycle, validate


def task(name: str, *deps: str, source: str | None = None) -> Task:
    spec: dict[str, Any] = {"name": name, "template": {"spec": {"image": "x"}}}
    if deps:
        spec["dependsOn"] = list(deps)
    if source:
        spec["generator"] = {"fromTask": {"task": source}}
    return Task.model_validate(spec)


ORDERS = [
    ("one task", [task("a")], ["a"]),
    ("independent tasks keep spec order", [task("b"), task("a")], ["b", "a"]),
    (
        "a chain",
        [task("load", "transform"), task("transform", "extract"), task("extract")],
        ["extract", "transform", "load"],
    ),
    (
        "a diamond",
        [task("d", "b", "c"), task("c", "a"), task("b", "a"), task("a")],
        ["a", "c", "b", "d"],
    ),
    ("fromTask in dependsOn", [task("a"), task("b", "a", source="a")], ["a", "b"]),
]


@pytest.mark.parametrize(("tasks", "order"), [c[1:] for c in ORDERS], ids=[c[0] for c in ORDERS])
def test_topological_order(tasks: list[Task], order: list[str]) -> None:
    assert validate(tasks) == order


ERRORS = [
    ("duplicate name", [task("a"), task("a")], "task name 'a' is used more than once"),
    ("unknown dependency", [task("a", "zz")], "task 'a' depends on 'zz', which is not a task"),
    ("self dependency", [task("a", "a")], "cycle: a -> a"),
    ("two-task cycle", [task("a", "b"), task("b", "a")], "cycle: a -> b -> a"),
    (
        "longer cycle behind a root",
        [task("r"), task("x", "r", "z"), task("y", "x"), task("z", "y")],
        "cycle: x -> z -> y -> x",
    ),
    (
        "fromTask not in dependsOn",
        [task("a"), task("b", source="a")],
        "task 'b' reads fromTask 'a', which must be in its dependsOn",
    ),
]


@pytest.mark.parametrize(("tasks", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_invalid_graphs_are_refused_with_a_message(tasks: list[Task], message: str) -> None:
    with pytest.raises(DagError) as raised:
        validate(tasks)
    assert message in str(raised.value)


def test_find_cycle_on_a_deep_chain_does_not_recurse() -> None:
    graph = {f"t{i}": [f"t{i + 1}"] for i in range(5000)}
    graph["t5000"] = []
    assert find_cycle(graph) == []
    graph["t5000"] = ["t0"]
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and len(cycle) == 5002
