"""Every aggregation, its edges, and the errors that fail only the task's aggregate."""

from __future__ import annotations

from typing import Any

import pytest

from workunits.api.workjob import Aggregate
from workunits.core.aggregate import AggregateError, aggregate


def agg(op: str, field: str | None = None) -> Aggregate:
    return Aggregate.model_validate({"op": op, "field": field} if field else {"op": op})


CASES = [
    ("collect keeps order and nulls", "collect", None, [3, None, "a"], [3, None, "a"]),
    ("collect of nothing", "collect", None, [], []),
    ("collect a field", "collect", "rows", [{"rows": 1}, {"rows": 2}], [1, 2]),
    ("count skips nulls", "count", None, [1, None, {"a": 1}], 2),
    ("count of nothing", "count", None, [], 0),
    ("sum of ints stays int", "sum", None, [1, 2, 3], 6),
    ("sum with floats", "sum", None, [1, 2.5], 3.5),
    ("sum of nothing", "sum", None, [], 0),
    ("sum skips nulls", "sum", None, [1, None, 2], 3),
    (
        "sum a nested field",
        "sum",
        "stats.rows",
        [{"stats": {"rows": 4}}, {"stats": {"rows": 6}}],
        10,
    ),
    ("min of numbers", "min", None, [3, -1, 2.5], -1),
    ("max of numbers", "max", None, [3, -1, 2.5], 3),
    ("min of strings", "min", None, ["b", "a", "c"], "a"),
    ("max of nothing", "max", None, [], None),
    ("mean", "mean", None, [1, 2, 3, 4], 2.5),
    ("mean of nothing", "mean", None, [], None),
    ("concat strings", "concat", None, ["ab", "c", ""], "abc"),
    ("concat lists", "concat", None, [[1], [], [2, 3]], [1, 2, 3]),
    ("concat of nothing", "concat", None, [], []),
    ("merge later wins", "merge", None, [{"a": 1, "b": 1}, {"b": 2}], {"a": 1, "b": 2}),
    ("merge of nothing", "merge", None, [], {}),
    (
        "merge a field",
        "merge",
        "counts",
        [{"counts": {"x": 1}}, {"counts": {"y": 2}}],
        {"x": 1, "y": 2},
    ),
]


@pytest.mark.parametrize(
    ("op", "field", "results", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_aggregations(op: str, field: str | None, results: list[Any], expected: Any) -> None:
    value = aggregate(agg(op, field), results)
    assert value == expected
    assert type(value) is type(expected)


ERRORS = [
    (
        "sum of a string",
        "sum",
        None,
        [1, "2"],
        "sum: the result of unit 11 is a string, not a number",
    ),
    (
        "sum of a boolean",
        "sum",
        None,
        [True],
        "sum: the result of unit 10 is a boolean, not a number",
    ),
    ("mean of an object", "mean", None, [{}], "mean: the result of unit 10 is an object"),
    ("min of mixed kinds", "min", None, [1, "a"], "min: the result of unit 11 is a string, unlike"),
    (
        "max of lists",
        "max",
        None,
        [[1]],
        "max: the result of unit 10 is a list; expected a number or a string",
    ),
    ("concat mixed", "concat", None, ["a", [1]], "concat: the result of unit 11 is a list, unlike"),
    ("concat numbers", "concat", None, [1], "expected a string or a list"),
    ("merge a list", "merge", None, [{"a": 1}, [1]], "merge: the result of unit 11 is a list"),
    (
        "field of a non-object",
        "sum",
        "rows",
        [5],
        "the result of unit 10 is a number, not an object with field rows",
    ),
    ("missing field", "sum", "a.b", [{"a": {}}], "the result of unit 10 has no field a.b"),
]


@pytest.mark.parametrize(
    ("op", "field", "results", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_errors_name_the_unit(op: str, field: str | None, results: list[Any], message: str) -> None:
    with pytest.raises(AggregateError) as raised:
        aggregate(agg(op, field), results, [10 + i for i in range(len(results))])
    assert message in str(raised.value)


def test_without_indices_errors_name_the_position() -> None:
    with pytest.raises(AggregateError, match="sum: result 1 is a string"):
        aggregate(agg("sum"), [1, "x"])


UNSTORABLE = [
    ("sum past a float", "sum", [1e308, 1e308], "sum: the result is inf, beyond what a JSON"),
    ("sum to minus inf", "sum", [-1e308, -1e308], "sum: the result is -inf"),
    ("mean past a float", "mean", [1e308, 1e308], "mean: the result is inf"),
    ("sum of inf and -inf", "sum", [1e308, 1e308, -1e308, -1e308, float("-inf")], "is nan"),
    ("sum of huge ints", "sum", [10**308, 10**308], "sum: the result is an integer of 309 digits"),
    ("collect of a nan", "collect", [1, {"a": [float("nan")]}], "collect: the result is nan"),
    ("merge of an inf", "merge", [{"a": float("inf")}], "merge: the result is inf"),
]


@pytest.mark.parametrize(
    ("op", "results", "message"), [c[1:] for c in UNSTORABLE], ids=[c[0] for c in UNSTORABLE]
)
def test_a_result_json_cannot_hold_fails_the_aggregate(
    op: str, results: list[Any], message: str
) -> None:
    # The API server drops such a number from the status: it must fail, not vanish.
    with pytest.raises(AggregateError) as raised:
        aggregate(agg(op), results)
    assert message in str(raised.value)
