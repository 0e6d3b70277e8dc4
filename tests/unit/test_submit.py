"""``submit --watch``: every object the manifest created is followed to its end."""

from __future__ import annotations

import io
import json
import pathlib
from typing import Any

from rich.console import Console

from workunits.cli.cluster import Kind, NotFound
from workunits.cli.commands import submit


def unit(name: str, phase: str | None = None) -> dict[str, Any]:
    status = {"phase": phase, "reason": phase} if phase else {}
    return {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkUnit",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"image": "busybox"},
        "status": status,
    }


class FakeCluster:
    """Creates what it is given; each read of an object returns its next scripted state
    (the last one from then on)."""

    def __init__(self, script: dict[str, list[str | None]]) -> None:
        self.script = script
        self.reads: dict[str, int] = {}
        self.custom = self

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "namespace": namespace}, "status": {}}

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        states = self.script[name]
        if not states:
            raise NotFound(f"workunit/{name} not found")
        self.reads[name] = self.reads.get(name, 0) + 1
        return unit(name, states[min(self.reads[name], len(states)) - 1])


def run(tmp_path: pathlib.Path, script: dict[str, list[str | None]]) -> tuple[int, list[str]]:
    manifest = tmp_path / "units.yaml"
    manifest.write_text("\n---\n".join(json.dumps(unit(name)) for name in script))
    out = io.StringIO()
    console = Console(file=out, width=200)
    cluster: Any = FakeCluster(script)
    code = submit(cluster, str(manifest), "ns", True, console, interval=0, timeout=10)
    return code, out.getvalue().splitlines()


def test_every_unit_is_followed_and_one_failure_fails_the_command(
    tmp_path: pathlib.Path,
) -> None:
    code, lines = run(
        tmp_path,
        {
            "a": ["Running", "Failed"],
            "b": ["Running", "Running", "Running", "Succeeded"],
            "c": ["Succeeded"],
        },
    )
    assert code == 1
    ends = [line.split(" after ")[0] for line in lines if " after " in line]
    # Each as it ended: c at the first read, a at the second, b last.
    assert ends == ["workunit/c Succeeded", "workunit/a Failed", "workunit/b Succeeded"]
    assert lines[-1] == "3 objects: 2 succeeded, 1 failed"


def test_the_last_unit_succeeding_does_not_hide_the_others(tmp_path: pathlib.Path) -> None:
    script: dict[str, list[str | None]] = {f"u{i}": ["Failed"] for i in range(7)}
    script["u7"] = ["Succeeded"]
    code, lines = run(tmp_path, script)
    assert code == 1
    assert lines[-1] == "8 objects: 1 succeeded, 7 failed"


def test_all_succeeded_is_success(tmp_path: pathlib.Path) -> None:
    code, lines = run(tmp_path, {"a": ["Pending", "Succeeded"], "b": ["Succeeded"]})
    assert code == 0
    assert lines[-1] == "2 objects: 2 succeeded"


def test_a_cancelled_or_deleted_unit_is_not_success(tmp_path: pathlib.Path) -> None:
    code, lines = run(tmp_path, {"a": ["Cancelled"], "b": ["Succeeded"], "c": []})
    assert code == 1
    assert "workunit/c was deleted while watched" in lines
    assert lines[-1] == "3 objects: 1 succeeded, 1 cancelled, 1 deleted"
