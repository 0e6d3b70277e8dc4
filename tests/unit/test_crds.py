"""The CRDs are generated from the models, committed, and agree with them."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from workunits.api.crd import all_crds, render
from workunits.api.workjob import WorkJobSpec
from workunits.api.workunit import WorkUnitSpec

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_committed_crds_are_current(name: str) -> None:
    committed = (ROOT / "crds" / name).read_text()
    assert committed == render(all_crds()[name]), (
        f"crds/{name} is stale: run `make crds` and commit the result"
    )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key in ("properties",):
            for child, sub in (node.get(key) or {}).items():
                found += _walk(sub, f"{path}.{child}")
        if isinstance(node.get("items"), dict):
            found += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_schemas_are_structural(name: str) -> None:
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "title" not in node, path
        free = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        assert "type" in node or free, f"{path} has no type"
        assert node.get("default", 0) is not None, f"{path} has a null default"
        for branch in node.get("anyOf", []):
            assert set(branch) <= {"type"} and node.get("x-kubernetes-int-or-string"), path


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """Apply the CRD's defaults to an empty object, the way the API server does."""
    out: dict[str, Any] = {}
    for key, sub in (schema.get("properties") or {}).items():
        if "default" in sub:
            value = sub["default"]
            if isinstance(value, dict) and sub.get("properties"):
                value = {**_defaults(sub), **value}
            out[key] = value
    return out


def test_crd_defaults_agree_with_the_models() -> None:
    # C22: the retry section omitted reads back as the full documented default.
    crd = all_crds()["workunits.io_workunits.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    from_crd = _defaults(spec)
    from_model = WorkUnitSpec(image="x").dump()
    assert from_crd["retry"] == from_model["retry"]
    for key, value in from_crd.items():
        assert from_model[key] == value, key


def test_workjob_defaults_agree_with_the_models() -> None:
    crd = all_crds()["workunits.io_workjobs.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    from_model = WorkJobSpec.model_validate(
        {"tasks": [{"name": "a", "template": {"spec": {"image": "x"}}}]}
    ).dump()
    for key, value in _defaults(spec).items():
        assert from_model[key] == value, key


def test_every_spec_field_is_described_starting_with_its_name() -> None:
    crd = all_crds()["workunits.io_workunits.yaml"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for key, sub in spec["properties"].items():
        assert sub.get("description", "").startswith(f"{key}:"), key


def test_printer_columns_and_names() -> None:
    crd = all_crds()["workunits.io_workunits.yaml"]
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["wu"] and names["categories"] == ["work"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:3] == ["Phase", "Attempts", "Reason"] and "Age" in columns


def test_workjob_columns_show_the_reason_beside_the_phase() -> None:
    crd = all_crds()["workunits.io_workjobs.yaml"]
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns][:3] == ["Phase", "Reason", "Progress"]
    assert columns[1]["jsonPath"] == ".status.reason"  # Suspended shows here


def test_crds_parse_as_yaml() -> None:
    for path in (ROOT / "crds").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_duration_in_a_spec_has_a_maximum(name: str) -> None:
    # The API server then refuses a time too large to add to a date, naming the field.
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    durations = [
        (path, node)
        for path, node in _walk(schema["properties"]["spec"], ".spec")
        if path.endswith("Seconds") or path.endswith("SecondsAfterFinished")
    ]
    assert len(durations) >= 4, durations
    for path, node in durations:
        assert node.get("maximum") is not None, f"{path} has no maximum"


# Times that have already happened when they are set: kubectl shows a `date` column as the
# age of its time, and a time to come as <invalid>.
PAST_TIMES = {".metadata.creationTimestamp", ".status.startTime", ".status.completionTime"}


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_only_past_times_are_shown_as_ages(name: str) -> None:
    columns = all_crds()[name]["spec"]["versions"][0]["additionalPrinterColumns"]
    for column in columns:
        if column["type"] == "date":
            assert column["jsonPath"] in PAST_TIMES, column["name"]


def test_the_next_attempt_is_shown_as_its_time() -> None:
    columns = all_crds()["workunits.io_workunits.yaml"]["spec"]["versions"][0][
        "additionalPrinterColumns"
    ]
    (column,) = [c for c in columns if c["jsonPath"] == ".status.nextAttemptAt"]
    assert column["type"] == "string"
