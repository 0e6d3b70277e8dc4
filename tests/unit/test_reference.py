"""docs/reference.md is generated from the models and committed; it must be current."""

from __future__ import annotations

import pathlib

from workunits.api.reference import render

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_committed_reference_is_current() -> None:
    committed = (ROOT / "docs" / "reference.md").read_text()
    assert committed == render(), "docs/reference.md is stale: run `make docs` and commit it"


def test_every_spec_field_is_in_the_reference() -> None:
    page = render()
    for field in (
        "spec.retry.backoff.jitter",
        "spec.dependsOn",
        "status.observedGeneration",
        "spec.tasks[].generator.range.step",
        "status.conditions[].type",
    ):
        assert f"`{field}`" in page, field
