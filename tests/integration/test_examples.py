"""Every example in examples/ is applied as users would, and ends as it says it does."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.kube import ROOT, get, kubectl, wait_for

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
FINAL = ("Succeeded", "Failed", "Cancelled")


def _objects() -> list[tuple[str, str, str]]:
    found = []
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc["kind"].lower(), doc["metadata"]["name"]))
    return found


def test_there_are_examples_of_both_kinds() -> None:
    kinds = {kind for _, kind, _ in _objects()}
    assert kinds == {"workunit", "workjob"}


@pytest.mark.parametrize(
    ("file", "kind", "name"), _objects(), ids=[f"{f}:{n}" for f, _, n in _objects()]
)
def test_each_example_succeeds(ns: str, file: str, kind: str, name: str) -> None:
    kubectl("apply", "-n", ns, "-f", str(ROOT / "examples" / file))

    def finished() -> dict[str, Any] | None:
        obj = get(kind, name, ns)
        return obj if ((obj or {}).get("status") or {}).get("phase") in FINAL else None

    status = wait_for(f"{kind} {name} to finish", finished, timeout=180)["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    EXPECTED.get(name, lambda _: None)(status)


def _etl(status: dict[str, Any]) -> None:
    tasks = {t["name"]: t for t in status["tasks"]}
    assert tasks["transform"]["result"] == 250 + 251 + 252 + 253
    assert status["progress"] == "6/6"


def _sweep(status: dict[str, Any]) -> None:
    assert status["tasks"][0]["result"] == pytest.approx(0.86)


def _media(status: dict[str, Any]) -> None:
    tasks = {t["name"]: t for t in status["tasks"]}
    assert tasks["episodes"]["result"] == 8 * 1500
    assert tasks["recording"]["counts"]["total"] == 5  # 4 whole GiB chunks and the rest


def _hello(status: dict[str, Any]) -> None:
    assert status["attempts"] == 1


EXPECTED = {"etl-daily": _etl, "sweep-lr-batch": _sweep, "media-season-3": _media, "hello": _hello}
