"""Generates the CustomResourceDefinitions from the pydantic models.

pydantic writes JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema:
no ``$ref``, no ``null`` branches, a ``type`` on every node except those marked
``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``. This
module rewrites the one into the other, so the models stay the only source.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from workunits import GROUP, VERSION
from workunits.api.workjob import WorkJob, WorkJobSpec, WorkJobStatus
from workunits.api.workunit import WorkUnit, WorkUnitSpec, WorkUnitStatus

_DROP = {"title", "$defs", "discriminator"}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one pydantic JSON Schema node (and its children) into structural form."""
    node = dict(schema)

    # A $ref is inlined; the referring node's own keys (description, default) win.
    ref = node.pop("$ref", None)
    if ref is not None:
        target = defs[ref.rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**structural(node.pop("allOf")[0], defs), **node}

    # Optional[X] is written anyOf [X, null]: Kubernetes leaves the field out instead.
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            del node["anyOf"]
            node = {**structural(branches[0], defs), **node}
        elif all("type" in b and set(b) <= {"type"} for b in branches):
            raise ValueError(f"a union of plain types cannot be structural: {branches}")

    if node.get("default", ...) is None:
        del node["default"]
    for key in _DROP:
        node.pop(key, None)

    # Constrained map keys: Kubernetes has no patternProperties; the operator checks keys.
    patterned = node.pop("patternProperties", None)
    if patterned:
        node["additionalProperties"] = next(iter(patterned.values()))
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("x-kubernetes-preserve-unknown-fields") and node.get("type") != "object":
        node.pop("type", None)
        node.pop("additionalProperties", None)

    if isinstance(node.get("properties"), dict):
        node["properties"] = {k: structural(v, defs) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = structural(node["additionalProperties"], defs)
    if isinstance(node.get("items"), dict):
        node["items"] = structural(node["items"], defs)
    return node


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


def _crd(
    kind: str,
    plural: str,
    short: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    description: str,
) -> dict[str, Any]:
    status_schema = schema_of(status)
    status_schema.pop("required", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["work"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "description": description,
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": schema_of(spec),
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def workunit_crd() -> dict[str, Any]:
    columns = [
        _column("Phase", ".status.phase"),
        _column("Attempts", ".status.attempts", "integer"),
        _column("Reason", ".status.reason"),
        _column("Job", ".status.jobName", priority=1),
        # A time to come: as a date, kubectl would show its age, which is <invalid>.
        _column("Next-Attempt", ".status.nextAttemptAt", priority=1),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    doc = WorkUnit.__doc__ or ""
    return _crd("WorkUnit", "workunits", "wu", WorkUnitSpec, WorkUnitStatus, columns, doc)


def workjob_crd() -> dict[str, Any]:
    columns = [
        _column("Phase", ".status.phase"),
        _column("Reason", ".status.reason"),  # Suspended, Cancelled, FailureBudgetExceeded...
        _column("Progress", ".status.progress"),
        _column("Failed", ".status.counts.failed", "integer"),
        _column("Running", ".status.counts.running", "integer", priority=1),
        _column("ETA", ".status.eta"),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    doc = WorkJob.__doc__ or ""
    return _crd("WorkJob", "workjobs", "wj", WorkJobSpec, WorkJobStatus, columns, doc)


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD, as committed under crds/."""
    return {
        f"{GROUP}_workunits.yaml": workunit_crd(),
        f"{GROUP}_workjobs.yaml": workjob_crd(),
    }


def render(crd: dict[str, Any]) -> str:
    header = "# Generated from the models in operator/workunits/api: `workunits crds`.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)
