"""The store behind the operator's own Job and pod watches: what it reports, and when."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from workunits.handlers.units import job_entry, unit_entry
from workunits.kube.informer import Informer, _lines


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, tuple[str, str], Any, Any]] = []

    def __call__(self, kind: str, key: tuple[str, str], new: Any, old: Any) -> None:
        self.changes.append((kind, key, new, old))


def informer(scopes: int = 1) -> tuple[Informer, Recorder]:
    recorder = Recorder()
    store = Informer(
        "jobs",
        [lambda **_: None] * scopes,
        "label",
        lambda body: body,
        recorder,
        group=lambda key, entry: entry.get("unit"),
    )
    return store, recorder


def test_synced_only_once_every_scope_has_been_listed() -> None:
    store, _ = informer(scopes=2)
    store._replace(0, {("a", "j1"): {"unit": "u1"}})
    assert not store.synced.is_set()
    store._replace(1, {})
    assert store.synced.is_set()
    assert store.relists == 0


def test_an_update_that_changes_nothing_read_is_not_reported() -> None:
    store, seen = informer()
    store._replace(0, {})
    store._apply(0, ("a", "j1"), {"unit": "u1", "state": "Active"})
    store._apply(0, ("a", "j1"), {"unit": "u1", "state": "Active"})
    store._apply(0, ("a", "j1"), {"unit": "u1", "state": "Complete"})
    assert [(kind, new["state"]) for kind, _, new, _ in seen.changes] == [
        ("ADDED", "Active"),
        ("MODIFIED", "Complete"),
    ]
    assert seen.changes[1][3] == {"unit": "u1", "state": "Active"}
    assert store.events == 3


def test_a_relist_reports_what_went_missing_and_what_changed() -> None:
    store, seen = informer()
    store._replace(0, {("a", "j1"): {"unit": "u1"}, ("a", "j2"): {"unit": "u1"}})
    seen.changes.clear()
    store._replace(0, {("a", "j2"): {"unit": "u1", "done": True}, ("a", "j3"): {"unit": "u2"}})
    assert sorted((kind, key[1]) for kind, key, _, _ in seen.changes) == [
        ("ADDED", "j3"),
        ("DELETED", "j1"),
        ("MODIFIED", "j2"),
    ]
    assert store.relists == 1
    assert store.group("u1") == {("a", "j2"): {"unit": "u1", "done": True}}
    assert store.group("u2") == {("a", "j3"): {"unit": "u2"}}


def test_groups_follow_moves_and_deletions() -> None:
    store, seen = informer()
    store._replace(0, {})
    store._apply(0, ("a", "p1"), {"unit": "u1"})
    store._apply(0, ("a", "p1"), {"unit": "u2"})
    assert store.group("u1") == {}
    assert store.group("u2") == {("a", "p1"): {"unit": "u2"}}
    store._apply(0, ("a", "p1"), None)
    store._apply(0, ("a", "p1"), None)  # deleted twice: reported once
    assert store.group("u2") == {}
    assert store.get(("a", "p1")) is None
    assert [kind for kind, *_ in seen.changes] == ["ADDED", "MODIFIED", "DELETED"]
    assert "u2" not in store.groups  # empty groups do not pile up


def test_a_failing_handler_does_not_stop_the_store() -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    store = Informer("pods", [lambda **_: None], "label", lambda body: body, broken)
    store._replace(0, {})
    store._apply(0, ("a", "p1"), {"x": 1})
    store._apply(0, ("a", "p2"), {"x": 2})
    assert len(store.store) == 2


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def stream(self, amount: Any, decode_content: bool) -> Any:
        return iter(self.chunks)


def test_lines_are_cut_where_the_newlines_are_not_where_the_chunks_end() -> None:
    response = Chunks(b'{"a":', b'1}\n{"b":2}\n\n{"c"', b":3}")
    assert list(_lines(response)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def job(conditions: list[dict[str, str]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "hello-1-abc",
            "namespace": "ns",
            "labels": {"workunits.io/unit-uid": "u1", "workunits.io/attempt": "1"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"kind": "WorkUnit", "name": "hello", "uid": "u1"}],
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "work"}]}}},
        "status": {"conditions": conditions or [], **status},
    }


def test_a_job_is_kept_as_what_decisions_read() -> None:
    entry = job_entry(job(startTime="2026-01-01T00:00:01Z", active=1))
    body = entry.body()
    assert body["metadata"]["labels"]["workunits.io/attempt"] == "1"
    assert body["status"] == {"conditions": [], "startTime": "2026-01-01T00:00:01Z"}
    assert "spec" not in body and "managedFields" not in body["metadata"]
    assert (entry.unit_uid, entry.unit) == ("u1", "hello")


def test_only_a_jobs_conditions_or_deletion_are_decisive() -> None:
    running = job_entry(job(active=1))
    assert job_entry(job(active=1, ready=1)).decisive == running.decisive
    complete = [{"type": "Complete", "status": "True"}]
    assert job_entry(job(complete, succeeded=1)).decisive != running.decisive
    deleting = job(active=1)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    assert job_entry(deleting).decisive != running.decisive


def test_a_unit_without_status_is_new_and_goes_first() -> None:
    body = {"metadata": {"name": "u", "namespace": "ns", "uid": "u1", "generation": 1}}
    assert unit_entry(body).new
    assert not unit_entry({**body, "status": {"phase": "Running", "attempts": 1}}).new


def test_changes_from_watch_threads_reach_the_loop_in_order_with_one_wake_up() -> None:
    async def scenario() -> tuple[list[Any], int]:
        store, seen = informer()
        store._loop = asyncio.get_running_loop()
        wake_ups = 0
        take = store._take

        def counted() -> None:
            nonlocal wake_ups
            wake_ups += 1
            take()

        store._take = counted  # type: ignore[method-assign]

        def broken(*_: Any) -> None:
            raise RuntimeError("a fault in one change")

        def watch_thread() -> None:
            store._post(store._replace, 0, {})
            store._post(store._apply, 0, ("a", "j1"), {"unit": "u1", "state": "Active"})
            store._post(broken)
            store._post(store._apply, 0, ("a", "j1"), {"unit": "u1", "state": "Complete"})

        thread = threading.Thread(target=watch_thread)
        thread.start()
        thread.join()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return [(kind, new["state"]) for kind, _, new, _ in seen.changes], wake_ups

    changes, wake_ups = asyncio.run(scenario())
    assert changes == [("ADDED", "Active"), ("MODIFIED", "Complete")]
    assert wake_ups == 1


def test_a_refused_watch_is_logged_with_the_servers_reason(caplog: Any) -> None:
    store, _ = informer()

    def refused(**_: Any) -> None:
        store.stop()  # one failure is enough
        exc = ApiException(status=403, reason="Forbidden")
        exc.body = json.dumps({"message": 'pods is forbidden: cannot list resource "pods"'})
        raise exc

    with caplog.at_level(logging.WARNING):
        store._run(0, refused)
    assert 'list and watch jobs: 403 Forbidden: pods is forbidden: cannot list resource "pods"' in (
        caplog.text
    )
