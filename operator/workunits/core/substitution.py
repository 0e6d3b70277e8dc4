"""A task's unit template made into one unit's spec, for one item.

``${item}``, ``${item.key.sub}`` (a list element by its number: ``${item.files.0}``),
``${index}`` and ``${task}`` are replaced in the image, the command, the args, env
values, parameter values, and every string of a full pod ``template`` (its annotations too);
nothing else changes. Strings are put in as they are, anything else as its JSON text.
``$${...}`` stands for a literal ``${...}``. A placeholder of ours that names nothing
(``${item.missing}``, ``${items}``) is an error, never left in place silently; other
``${...}``, such as a shell's ``${HOME}``, are left for the container.

Every unit also gets the parameters WORKUNIT_ITEM (its item as JSON) and
WORKUNIT_INDEX, so a program can read its input without any substitution.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

PARAM_ITEM = "WORKUNIT_ITEM"
PARAM_INDEX = "WORKUNIT_INDEX"

_PLACEHOLDER = re.compile(r"\$(\$?)\{([^{}]*)\}")
_OURS = re.compile(r"^\s*(item|index|task)")


class SubstitutionError(ValueError):
    """A placeholder names nothing, such as a key the item does not have."""


def as_text(value: Any) -> str:
    """A value as it goes into a string: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def lookup(path: str, item: Any, index: int, task: str) -> Any:
    """The value a placeholder's path names."""
    head, _, rest = path.strip().partition(".")
    if head == "index" and not rest:
        return index
    if head == "task" and not rest:
        return task
    if head != "item":
        raise SubstitutionError(
            f"${{{path}}}: unknown placeholder (use ${{item}}, ${{item.key}}, "
            "${index} or ${task})"
        )

    value = item
    walked = "item"
    for key in rest.split(".") if rest else []:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict | list):
            raise SubstitutionError(f"${{{path}}}: {walked} has no {key!r}")
        else:
            raise SubstitutionError(
                f"${{{path}}}: {walked} is {as_text(value)[:40]}, not an object"
            )
        walked += f".{key}"
    return value


def substitute(text: str, item: Any, index: int, task: str) -> str:
    """One string with its placeholders replaced."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        if not _OURS.match(match.group(2)):
            return match.group(0)  # not ours: a shell variable, say
        return as_text(lookup(match.group(2), item, index, task))

    return _PLACEHOLDER.sub(replace, text)


def render_unit_spec(
    template_spec: dict[str, Any],
    item: Any,
    index: int,
    task: str,
) -> dict[str, Any]:
    """The spec of the unit for ``item`` (JSON form, camelCase), the template untouched."""
    spec = copy.deepcopy(template_spec)

    def each(values: list[Any] | None) -> list[Any] | None:
        if values is None:
            return None
        return [substitute(v, item, index, task) if isinstance(v, str) else v for v in values]

    if isinstance(spec.get("image"), str):
        spec["image"] = substitute(spec["image"], item, index, task)
    for key in ("command", "args"):
        if spec.get(key) is not None:
            spec[key] = each(spec[key])
    for env in spec.get("env") or []:
        if isinstance(env.get("value"), str):
            env["value"] = substitute(env["value"], item, index, task)

    if spec.get("template") is not None:
        spec["template"] = _strings(spec["template"], item, index, task)

    parameters = {
        name: substitute(value, item, index, task) if isinstance(value, str) else value
        for name, value in (spec.get("parameters") or {}).items()
    }
    parameters[PARAM_ITEM] = json.dumps(item, separators=(",", ":"))
    parameters[PARAM_INDEX] = str(index)
    spec["parameters"] = parameters
    return spec


def _strings(value: Any, item: Any, index: int, task: str) -> Any:
    """Every string inside ``value`` (a pod template) with its placeholders replaced."""
    if isinstance(value, str):
        return substitute(value, item, index, task)
    if isinstance(value, dict):
        return {k: _strings(v, item, index, task) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v, item, index, task) for v in value]
    return value
