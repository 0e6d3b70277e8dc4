"""A task's results put together: collected in index order, or reduced to one value.

The input is the results of the task's succeeded units in index order. ``field``
first picks a key of each result (``a.b`` for nesting). A null value (a unit that
reported nothing) is kept by ``collect`` and skipped by every other operation, so
``count`` counts the values there are. A value of the wrong kind (a string in a sum,
a list in a merge) raises AggregateError naming the unit's index, and so does a
result no JSON number can hold (a sum past a float's range is inf, which the API server
would drop from the status without a word): the caller fails that task's aggregate with
the message, and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from workunits.api.workjob import Aggregate, AggregateOp


class AggregateError(ValueError):
    """The results cannot be put together as asked."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


def pick(result: Any, field: str, where: str) -> Any:
    """The value at a dotted path of an object result."""
    value = result
    for key in field.split("."):
        if not isinstance(value, dict):
            raise AggregateError(f"{where} is {_kind(value)}, not an object with field {field}")
        if key not in value:
            raise AggregateError(f"{where} has no field {field}")
        value = value[key]
    return value


def _numbers(values: list[tuple[str, Any]], op: str) -> list[int | float]:
    for where, value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AggregateError(f"{op}: {where} is {_kind(value)}, not a number")
    return [value for _, value in values]


def _same_kind(values: list[tuple[str, Any]], op: str, kinds: tuple[type, ...]) -> type | None:
    """The one kind every value has (one of ``kinds``), or None when there are none."""
    first: type | None = None
    for where, value in values:
        kind = next(
            (k for k in kinds if isinstance(value, k) and not isinstance(value, bool)), None
        )
        if kind is None:
            allowed = " or ".join(dict.fromkeys(_kind(k()) for k in kinds))
            raise AggregateError(f"{op}: {where} is {_kind(value)}; expected {allowed}")
        if first is None:
            first = kind
        elif kind is not first and {kind, first} != {int, float}:
            raise AggregateError(f"{op}: {where} is {_kind(value)}, unlike the values before it")
    return first


def _unstorable(value: Any) -> str | None:
    """The first number in ``value`` that JSON cannot hold (inf, nan, an int past a
    float's range), as text; None when there is none."""
    if isinstance(value, list):
        return next((bad for v in value if (bad := _unstorable(v)) is not None), None)
    if isinstance(value, dict):
        return next((bad for v in value.values() if (bad := _unstorable(v)) is not None), None)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return f"an integer of {len(str(abs(value)))} digits"
    return None


def aggregate(
    spec: Aggregate,
    results: Sequence[Any],
    indices: Sequence[int] | None = None,
) -> Any:
    """The task's aggregate. ``indices`` (the units' indices) only make messages exact."""
    value = _aggregate(spec, results, indices)
    bad = _unstorable(value)
    if bad is not None:
        raise AggregateError(
            f"{AggregateOp(spec.op).value}: the result is {bad}, beyond what a JSON number "
            "can hold: the values are too large to put together this way"
        )
    return value


def _aggregate(
    spec: Aggregate,
    results: Sequence[Any],
    indices: Sequence[int] | None,
) -> Any:
    labels = [f"the result of unit {i}" for i in indices] if indices is not None else None

    def where(position: int) -> str:
        return labels[position] if labels is not None else f"result {position}"

    values: list[tuple[str, Any]] = []
    for position, result in enumerate(results):
        if result is not None and spec.field:
            result = pick(result, spec.field, where(position))
        values.append((where(position), result))

    op = AggregateOp(spec.op)
    if op is AggregateOp.COLLECT:
        return [value for _, value in values]

    present = [(w, v) for w, v in values if v is not None]
    if op is AggregateOp.COUNT:
        return len(present)
    if op is AggregateOp.SUM:
        return sum(_numbers(present, "sum"))
    if op is AggregateOp.MEAN:
        numbers = _numbers(present, "mean")
        return sum(numbers) / len(numbers) if numbers else None
    if op in (AggregateOp.MIN, AggregateOp.MAX):
        _same_kind(present, op.value, (int, float, str))
        plain = [v for _, v in present]
        if not plain:
            return None
        return min(plain) if op is AggregateOp.MIN else max(plain)
    if op is AggregateOp.CONCAT:
        kind = _same_kind(present, "concat", (str, list))
        if kind is str:
            return "".join(v for _, v in present)
        joined: list[Any] = []
        for _, value in present:
            joined.extend(value)
        return joined
    if op is AggregateOp.MERGE:
        _same_kind(present, "merge", (dict,))
        merged: dict[str, Any] = {}
        for _, value in present:
            merged.update(value)  # later units win
        return merged
    raise AggregateError(f"unknown aggregate op {op}")
