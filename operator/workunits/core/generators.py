"""A task's items: what each of its units works on, from the task's generator.

Five sources, one per field of :class:`~workunits.api.workjob.Generator`: the items
themselves, a numeric range, chunks of a total size, a ConfigMap key, and an earlier
task's results. A task without a generator has one unit, whose item is null.

Nothing here reads the API: the caller passes what the generators need in a
:class:`Sources` (ConfigMap data, earlier results). :func:`count` and :func:`item_at`
answer without building the list for ranges and chunks, so a WorkJob of a million
items creates its units lazily at no cost; :func:`expand` builds the whole list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workunits.api.workjob import Chunks, ConfigMapItems, FromTask, Generator, Range


class GeneratorError(ValueError):
    """The generator cannot give its items: a message a person can act on."""


class ConfigMapNotFound(GeneratorError):
    """The ConfigMap a generator reads does not exist (yet)."""

    def __init__(self, name: str, key: str) -> None:
        super().__init__(f"ConfigMap {name} (key {key}) was not found")
        self.name = name


class NotLoaded(LookupError):
    """The caller has not passed the input a generator needs: load it and ask again."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class Sources:
    """What generators read, gathered by the caller.

    ``config_maps`` maps a ConfigMap's name to its data, or to None when it does not
    exist; a name left out was not loaded. ``task_results`` maps a task's name to its
    succeeded units' results in index order.
    """

    config_maps: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    task_results: Mapping[str, Sequence[Any]] = field(default_factory=dict)


NO_SOURCES = Sources()
MAX_ITEMS = 1_000_000  # units of one task: beyond this, split the work into tasks


# ---- one function per source ----------------------------------------------------------


def _range(spec: Range) -> range:
    if spec.step == 0:
        raise GeneratorError("range: step must not be 0")
    return range(spec.start, spec.end, spec.step)


def _chunk_count(spec: Chunks) -> int:
    if spec.size < 1:
        raise GeneratorError("chunks: size must be at least 1")
    if spec.total < 0:
        raise GeneratorError("chunks: total must not be negative")
    return -(-spec.total // spec.size)


def _chunk(spec: Chunks, index: int) -> dict[str, int]:
    start = index * spec.size
    end = min(start + spec.size, spec.total)
    return {"start": spec.offset + start, "end": spec.offset + end}


def _config_map(spec: ConfigMapItems, sources: Sources) -> list[Any]:
    if spec.name not in sources.config_maps:
        raise NotLoaded(spec.name)
    data = sources.config_maps[spec.name]
    if data is None:
        raise ConfigMapNotFound(spec.name, spec.key)
    if spec.key not in data:
        raise GeneratorError(f"ConfigMap {spec.name} has no key {spec.key}")
    text = data[spec.key]
    where = f"ConfigMap {spec.name} key {spec.key}"

    if spec.format == "lines":
        # One item per line; blank lines (a trailing newline, spacing) give none.
        return [line.strip() for line in text.splitlines() if line.strip()]

    try:
        items = json.loads(text)
    except ValueError as error:
        raise GeneratorError(f"{where} is not valid JSON: {error}") from error
    if not isinstance(items, list):
        raise GeneratorError(f"{where} holds a JSON {_json_kind(items)}, not a list")
    return items


def _from_task(spec: FromTask, sources: Sources) -> list[Any]:
    if spec.task not in sources.task_results:
        raise NotLoaded(f"results of task {spec.task}")
    items: list[Any] = []
    for result in sources.task_results[spec.task]:
        if result is None:
            continue  # a unit that reported nothing gives no item
        if spec.flatten and isinstance(result, list):
            items.extend(result)
        else:
            items.append(result)
    return items


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# ---- the public functions -------------------------------------------------------------


def expand(generator: Generator | None, sources: Sources = NO_SOURCES) -> list[Any]:
    """Every item, in order. Ranges and chunks are built in full: prefer item_at."""
    if generator is None:
        return [None]
    if generator.items is not None:
        return list(generator.items)
    if generator.range is not None:
        return list(_range(generator.range))
    if generator.chunks is not None:
        spec = generator.chunks
        return [_chunk(spec, i) for i in range(_chunk_count(spec))]
    if generator.config_map is not None:
        return _config_map(generator.config_map, sources)
    if generator.from_task is not None:
        return _from_task(generator.from_task, sources)
    raise GeneratorError("generator: no source is set")


def count(generator: Generator | None, sources: Sources = NO_SOURCES) -> int:
    """How many items, computed without building ranges and chunks."""
    if generator is not None and generator.range is not None:
        return len(_range(generator.range))
    if generator is not None and generator.chunks is not None:
        return _chunk_count(generator.chunks)
    return len(expand(generator, sources))


def item_at(generator: Generator | None, index: int, sources: Sources = NO_SOURCES) -> Any:
    """The item at ``index`` (from 0), built alone for ranges and chunks."""
    if index < 0:
        raise IndexError(f"item index {index} is negative")
    if generator is not None and generator.range is not None:
        return _range(generator.range)[index]
    if generator is not None and generator.chunks is not None:
        if index >= _chunk_count(generator.chunks):
            raise IndexError(f"chunk {index} is past the last chunk")
        return _chunk(generator.chunks, index)
    return expand(generator, sources)[index]


class Items:
    """A task's items for one reconcile: counted once, the list built at most once."""

    def __init__(self, generator: Generator | None, sources: Sources = NO_SOURCES) -> None:
        self.generator = generator
        self.lazy = generator is not None and (
            generator.range is not None or generator.chunks is not None
        )
        self.built: list[Any] | None = None if self.lazy else expand(generator, sources)
        self.total = count(generator) if self.lazy else len(self.built or [])
        if self.total > MAX_ITEMS:
            raise GeneratorError(
                f"generator: {self.total} items, more than the {MAX_ITEMS} a task may have"
            )

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> Any:
        if self.built is not None:
            return self.built[index]
        return item_at(self.generator, index)
