"""Renders docs/reference.md, the field reference of both resources, from the models.

The text comes from the same JSON schema the CRDs are generated from
(:func:`workunits.api.crd.schema_of`): each field's description, type, default and
bounds. A test fails when the committed page is stale; ``make docs`` rewrites it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from workunits.api.common import QUANTITY_PATTERN
from workunits.api.crd import schema_of
from workunits.api.workjob import WorkJob, WorkJobSpec, WorkJobStatus
from workunits.api.workunit import WorkUnit, WorkUnitSpec, WorkUnitStatus

HEADER = """\
# Reference: WorkUnit and WorkJob

Generated from the models in `operator/workunits/api` by `make docs`; do not edit by
hand. API group `workunits.io`, version `v1alpha1`. Field paths use the JSON names;
`[]` marks the items of a list, `{}` the values of a map.
"""

# Bounds and formats worth telling a reader, in the order they are shown.
_LIMITS = (
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "items ≥ {}"),
    ("maxItems", "items ≤ {}"),
    ("maxProperties", "keys ≤ {}"),
    ("pattern", "pattern `{}`"),
)


def _quantity(node: dict[str, Any]) -> bool:
    return node.get("pattern") == QUANTITY_PATTERN


def _type(node: dict[str, Any]) -> str:
    if _quantity(node):
        return "quantity"
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if "enum" in node:
        return " \\| ".join(f"`{value}`" for value in node["enum"])
    kind = node.get("type")
    if kind == "array":
        return f"list of {_type(node.get('items') or {})}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    if kind is None and node.get("x-kubernetes-preserve-unknown-fields"):
        return "any"
    return str(kind or "any")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _notes(node: dict[str, Any], required: bool) -> str:
    notes = ["required"] if required else []
    if "default" in node:
        notes.append(f"default `{json.dumps(node['default'])}`")
    if _quantity(node):
        return _cell(", ".join(notes))
    if node.get("x-kubernetes-preserve-unknown-fields"):
        notes.append("free-form")
    for key, form in _LIMITS:
        if key in node and not (key == "maxProperties" and node[key] == 0):
            notes.append(form.format(node[key]))
    return _cell(", ".join(notes))


def _rows(node: dict[str, Any], path: str) -> list[str]:
    rows: list[str] = []
    required = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        here = f"{path}.{name}" if path else name
        description = _cell(str(child.get("description", "")))
        # Descriptions start with the field's own name ("retry: when ..."): drop it here.
        prefix = f"{name}:"
        if description.startswith(prefix):
            description = description[len(prefix) :].strip()
        rows.append(
            f"| `{here}` | {_type(child)} | {description} | {_notes(child, name in required)} |"
        )
        rows += _children(child, here)
    return rows


def _children(node: dict[str, Any], path: str) -> list[str]:
    if node.get("properties"):
        return _rows(node, path)
    items = node.get("items")
    if isinstance(items, dict) and items.get("properties"):
        return _rows(items, f"{path}[]")
    values = node.get("additionalProperties")
    if isinstance(values, dict) and values.get("properties"):
        return _rows(values, f"{path}{{}}")
    return []


def _section(title: str, model: type[BaseModel], root: str) -> list[str]:
    schema = schema_of(model)
    return [
        f"### {title}",
        "",
        "| Field | Type | Description | Notes |",
        "|---|---|---|---|",
        *_rows(schema, root),
        "",
    ]


def _resource(
    resource: type[BaseModel], spec: type[BaseModel], status: type[BaseModel]
) -> list[str]:
    kind = resource.__name__
    doc = (resource.__doc__ or "").strip()
    module_doc = (__import__(resource.__module__, fromlist=["_"]).__doc__ or "").strip()
    lines = [f"## {kind}", "", module_doc or doc, ""]
    lines += _section(f"{kind} spec", spec, "spec")
    lines += _section(f"{kind} status", status, "status")
    return lines


def render() -> str:
    """The whole page, as committed in docs/reference.md."""
    lines = [HEADER]
    lines += _resource(WorkUnit, WorkUnitSpec, WorkUnitStatus)
    lines += _resource(WorkJob, WorkJobSpec, WorkJobStatus)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(render())
