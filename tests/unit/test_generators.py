"""Generators at their edges, and items substituted into a unit's spec."""

from __future__ import annotations

from typing import Any

import pytest

from workunits.api.workjob import Generator, Range
from workunits.core.generators import (
    ConfigMapNotFound,
    GeneratorError,
    Items,
    NotLoaded,
    Sources,
    count,
    expand,
    item_at,
)
from workunits.core.substitution import SubstitutionError, render_unit_spec


def gen(**fields: Any) -> Generator:
    return Generator.model_validate(fields)


# ---- items, range, chunks ------------------------------------------------------------

CASES = [
    ("items as given", gen(items=[1, "a", {"k": 1}, None]), [1, "a", {"k": 1}, None]),
    ("empty items", gen(items=[]), []),
    ("no generator is one null item", None, [None]),
    ("range from 0", gen(range={"end": 3}), [0, 1, 2]),
    ("range with step", gen(range={"start": 1, "end": 10, "step": 4}), [1, 5, 9]),
    ("range end excluded on step", gen(range={"start": 0, "end": 9, "step": 3}), [0, 3, 6]),
    ("negative step counts down", gen(range={"start": 5, "end": 0, "step": -2}), [5, 3, 1]),
    ("negative range", gen(range={"start": -3, "end": 0}), [-3, -2, -1]),
    ("empty range start equals end", gen(range={"start": 4, "end": 4}), []),
    ("empty range wrong direction", gen(range={"start": 5, "end": 0}), []),
    ("empty range negative step upward", gen(range={"start": 0, "end": 5, "step": -1}), []),
    (
        "chunks with a shorter last one",
        gen(chunks={"total": 10, "size": 4}),
        [{"start": 0, "end": 4}, {"start": 4, "end": 8}, {"start": 8, "end": 10}],
    ),
    (
        "chunks dividing exactly",
        gen(chunks={"total": 8, "size": 4}),
        [{"start": 0, "end": 4}, {"start": 4, "end": 8}],
    ),
    ("chunks of total 0 give none", gen(chunks={"total": 0, "size": 4}), []),
    ("one chunk larger than total", gen(chunks={"total": 3, "size": 10}), [{"start": 0, "end": 3}]),
    (
        "chunks with an offset",
        gen(chunks={"total": 5, "size": 3, "offset": 100}),
        [{"start": 100, "end": 103}, {"start": 103, "end": 105}],
    ),
]


@pytest.mark.parametrize(
    ("generator", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_expand_count_and_item_at_agree(generator: Generator | None, expected: list[Any]) -> None:
    assert expand(generator) == expected
    assert count(generator) == len(expected)
    assert [item_at(generator, i) for i in range(len(expected))] == expected
    items = Items(generator)
    assert len(items) == len(expected)
    assert [items[i] for i in range(len(items))] == expected


@pytest.mark.parametrize(
    "generator",
    [gen(range={"end": 3}), gen(chunks={"total": 3, "size": 1})],
    ids=["range", "chunks"],
)
def test_item_at_past_the_end_is_an_index_error(generator: Generator) -> None:
    with pytest.raises(IndexError):
        item_at(generator, 3)
    with pytest.raises(IndexError):
        item_at(generator, -1)


def test_huge_ranges_and_chunks_are_never_built() -> None:
    big = gen(range={"start": 0, "end": 10**15, "step": 7})
    assert count(big) == -(-(10**15) // 7)
    assert item_at(big, 10**13) == 7 * 10**13
    chunks = gen(chunks={"total": 10**15 + 1, "size": 1000})
    assert count(chunks) == 10**12 + 1
    assert item_at(chunks, 10**12) == {"start": 10**15, "end": 10**15 + 1}
    bounded = gen(range={"start": 0, "end": 7 * 10**6, "step": 7})
    assert len(Items(bounded)) == count(bounded) == 10**6


def test_step_zero_is_refused() -> None:
    g = Generator.model_construct(range=Range.model_construct(start=0, end=3, step=0))
    with pytest.raises(GeneratorError, match="step must not be 0"):
        count(g)
    with pytest.raises(ValueError, match="step must not be 0"):
        gen(range={"end": 3, "step": 0})


def test_a_generator_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        gen(items=[1], range={"end": 2})


# ---- configMap ----------------------------------------------------------------------

CM = {"name": "inputs", "key": "files"}

CONFIGMAP_CASES = [
    ("json list", {}, {"files": '["a", 2, {"b": 3}]'}, ["a", 2, {"b": 3}]),
    ("json empty list", {}, {"files": "[]"}, []),
    ("lines", {"format": "lines"}, {"files": "a.csv\nb.csv\n"}, ["a.csv", "b.csv"]),
    ("lines skip blanks, strip CR", {"format": "lines"}, {"files": "a\r\n\n  b  \n"}, ["a", "b"]),
    ("lines of nothing", {"format": "lines"}, {"files": ""}, []),
]


@pytest.mark.parametrize(
    ("extra", "data", "expected"),
    [c[1:] for c in CONFIGMAP_CASES],
    ids=[c[0] for c in CONFIGMAP_CASES],
)
def test_config_map_items(extra: dict[str, Any], data: dict[str, str], expected: list[Any]) -> None:
    g = gen(configMap={**CM, **extra})
    sources = Sources(config_maps={"inputs": data})
    assert expand(g, sources) == expected
    assert count(g, sources) == len(expected)


CONFIGMAP_ERRORS = [
    ("missing key", {"other": "[]"}, "ConfigMap inputs has no key files"),
    ("not a list", {"files": '{"a": 1}'}, "ConfigMap inputs key files holds a JSON object, not"),
    ("a string", {"files": '"abc"'}, "holds a JSON string, not a list"),
    ("not json", {"files": "a,b"}, "ConfigMap inputs key files is not valid JSON"),
]


@pytest.mark.parametrize(
    ("data", "message"), [c[1:] for c in CONFIGMAP_ERRORS], ids=[c[0] for c in CONFIGMAP_ERRORS]
)
def test_config_map_errors_name_the_config_map_and_key(data: dict[str, str], message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        expand(gen(configMap=CM), Sources(config_maps={"inputs": data}))


def test_a_config_map_that_does_not_exist() -> None:
    with pytest.raises(ConfigMapNotFound, match="ConfigMap inputs \\(key files\\) was not found"):
        expand(gen(configMap=CM), Sources(config_maps={"inputs": None}))


def test_a_config_map_not_loaded_asks_for_it() -> None:
    with pytest.raises(NotLoaded) as raised:
        expand(gen(configMap=CM))
    assert raised.value.what == "inputs"


# ---- fromTask -----------------------------------------------------------------------

FROM_TASK_CASES = [
    ("lists are flattened", True, [["a", "b"], ["c"]], ["a", "b", "c"]),
    ("scalars kept", True, ["a", 1, {"k": 2}], ["a", 1, {"k": 2}]),
    ("empty lists give nothing", True, [[], ["x"], []], ["x"]),
    ("null results give nothing", True, [None, ["x"], None], ["x"]),
    ("no flatten keeps lists", False, [["a", "b"], ["c"]], [["a", "b"], ["c"]]),
    ("no results", True, [], []),
]


@pytest.mark.parametrize(
    ("flatten", "results", "expected"),
    [c[1:] for c in FROM_TASK_CASES],
    ids=[c[0] for c in FROM_TASK_CASES],
)
def test_from_task(flatten: bool, results: list[Any], expected: list[Any]) -> None:
    g = gen(fromTask={"task": "extract", "flatten": flatten})
    sources = Sources(task_results={"extract": results})
    assert expand(g, sources) == expected
    assert count(g, sources) == len(expected)
    assert [item_at(g, i, sources) for i in range(len(expected))] == expected


def test_from_task_without_results_asks_for_them() -> None:
    with pytest.raises(NotLoaded):
        expand(gen(fromTask={"task": "extract"}))


# ---- substitution -------------------------------------------------------------------

TEMPLATE = {
    "image": "busybox",
    "command": ["run", "${task}"],
    "args": ["--in=${item.file}", "--n=${index}", "${item}", "$${item} stays"],
    "env": [{"name": "SIZE", "value": "${item.meta.size}"}, {"name": "S", "valueFrom": {}}],
    "parameters": {"FIRST": "${item.parts.0}"},
}
ITEM = {"file": "a.csv", "meta": {"size": 3}, "parts": ["p0", "p1"]}


def test_render_substitutes_everywhere_it_should() -> None:
    spec = render_unit_spec(TEMPLATE, ITEM, 7, "transform")
    assert spec["command"] == ["run", "transform"]
    assert spec["args"] == [
        "--in=a.csv",
        "--n=7",
        '{"file":"a.csv","meta":{"size":3},"parts":["p0","p1"]}',
        "${item} stays",
    ]
    assert spec["env"][0] == {"name": "SIZE", "value": "3"}
    assert spec["env"][1] == {"name": "S", "valueFrom": {}}
    assert spec["parameters"]["FIRST"] == "p0"
    assert spec["parameters"]["WORKUNIT_INDEX"] == "7"
    assert (
        spec["parameters"]["WORKUNIT_ITEM"]
        == '{"file":"a.csv","meta":{"size":3},"parts":["p0","p1"]}'
    )
    assert TEMPLATE["args"][0] == "--in=${item.file}", "the template is left untouched"


@pytest.mark.parametrize(
    ("item", "expected"),
    [("plain", "plain"), (3, "3"), (1.5, "1.5"), (True, "true"), (None, "null"), ([1, 2], "[1,2]")],
    ids=["string as is", "int", "float", "bool as json", "null", "list as json"],
)
def test_whole_item_placeholder(item: Any, expected: str) -> None:
    spec = render_unit_spec({"image": "x", "args": ["${item}"]}, item, 0, "t")
    assert spec["args"] == [expected]
    assert spec["parameters"]["WORKUNIT_ITEM"] == (expected if item != "plain" else '"plain"')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${item.missing}", "item has no 'missing'"),
        ("${item.file.x}", "item.file is a.csv, not an object"),
        ("${item.parts.5}", "item.parts has no '5'"),
        ("${items}", "unknown placeholder"),
        ("${index.x}", "unknown placeholder"),
    ],
    ids=["missing key", "path through a string", "list index out of range", "typo", "index path"],
)
def test_unknown_paths_are_errors(text: str, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message):
        render_unit_spec({"image": "x", "args": [text]}, ITEM, 0, "t")


def test_a_task_of_more_than_a_million_items_is_refused() -> None:
    from workunits.core.generators import MAX_ITEMS, GeneratorError, Items

    huge = Generator.model_validate({"range": {"end": 100_000_000_000}})
    with pytest.raises(GeneratorError, match=f"more than the {MAX_ITEMS}"):
        Items(huge)
    assert len(Items(Generator.model_validate({"range": {"end": MAX_ITEMS}}))) == MAX_ITEMS
