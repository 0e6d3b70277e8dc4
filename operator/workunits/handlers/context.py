"""What the handlers share: the API access, the queues, and the caches.

The operator's own watches (kube/informer.py) keep WorkUnits, Jobs and pods; kopf's
index keeps WorkJobs. Reconciles wait until the watches have listed everything, and
kopf starts no handler before its index is filled, so the first reconcile already
sees every unit and Job that exists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workunits.handlers.queue import WorkQueue
from workunits.kube.client import Kube
from workunits.kube.informer import Informer
from workunits.logs import object_ref
from workunits.settings import Settings

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name)


class ObjectLogger(logging.LoggerAdapter[logging.Logger]):
    """Tags each record with the object it is about, the way kopf tags its own: kopf's
    formatter shows a ``[namespace/name]`` prefix in text, an ``object`` field in JSON."""

    def __init__(self, logger: logging.Logger, key: ObjectKey, kind: str | None = None) -> None:
        super().__init__(logger, {"k8s_ref": object_ref(kind, key[0], key[1]), "k8s_skip": True})

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


_HEAVY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """An object as the caches keep it: without managedFields and kubectl's copy of the
    last applied manifest, which no decision reads and which double its size."""
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and any(k in annotations for k in _HEAVY_ANNOTATIONS):
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in _HEAVY_ANNOTATIONS}
    return {**body, "metadata": meta}


@dataclass(frozen=True, slots=True)
class Packed:
    """An object as the caches keep it: its phase and version at hand, the rest as
    compact JSON. A decoded object costs ten times its JSON in memory; at tens of
    thousands of units that is the operator's largest cost, and decoding one when it
    is reconciled costs microseconds."""

    phase: str | None
    version: int
    text: bytes

    def body(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.text)
        return decoded


def pack(body: Mapping[str, Any]) -> Packed:
    slimmed = slim(body)
    return Packed(
        phase=(slimmed.get("status") or {}).get("phase"),
        version=version_of(slimmed),
        text=json.dumps(slimmed, separators=(",", ":")).encode(),
    )


def version_of(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


@dataclass
class Context:
    settings: Settings
    kube: Kube
    units: WorkQueue | None = None
    workjobs: WorkQueue | None = None
    indices: dict[str, Any] = field(default_factory=dict)
    # WorkUnits, and the Jobs and pods of units, from the operator's own watches.
    unit_cache: Informer | None = None
    jobs: Informer | None = None
    pods: Informer | None = None
    # Disrupted pods already deleted: (namespace, job) -> {(namespace, pod): facts},
    # kept until their Job goes (handlers/units.py).
    disrupted_pods: dict[ObjectKey, dict[ObjectKey, Any]] = field(default_factory=dict)
    # (namespace, name) -> the units whose dependsOn names it.
    dependents: dict[ObjectKey, set[str]] = field(default_factory=dict)
    # Objects as our own writes returned them, newer than the watch may have shown yet.
    written: dict[tuple[str, ObjectKey], dict[str, Any]] = field(default_factory=dict)
    # Jobs we created that the Job watch has not shown yet: unit uid -> {name: body}.
    created_jobs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    missing_permission: set[str] = field(default_factory=set)
    # ConfigMaps a WorkJob reads (inputs, results), as last read or written: the
    # WorkJob's key -> {name: data}. Dropped when it finishes or goes.
    config_maps: dict[ObjectKey, dict[str, dict[str, str]]] = field(default_factory=dict)
    # WorkJobs: (plural, key) -> (uid, generation, deleting) last queued for (spec
    # changes only); units keep theirs in the unit cache's entries.
    seen: dict[tuple[str, ObjectKey], tuple[Any, Any, bool]] = field(default_factory=dict)

    async def watches_synced(self) -> None:
        """Wait until the operator's own watches have listed what exists."""
        for informer in (self.unit_cache, self.jobs, self.pods):
            if informer is not None and not informer.synced.is_set():
                await informer.synced.wait()

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        """Keep kopf's index objects (the same live objects on every call)."""
        if not self.indices:
            self.indices = {k: v for k, v in kwargs.items() if k.endswith("_index")}

    def cached(self, plural: str, key: ObjectKey) -> Packed | None:
        """An object as the watches last showed it."""
        if plural == "workunits" and self.unit_cache is not None:
            entry = self.unit_cache.get(key)
            return entry.packed if entry is not None else None
        index = self.indices.get(f"{plural}_index")
        found: Packed | None = None
        if index is not None and key in index:
            for packed in index[key]:
                found = packed
        return found

    def latest(self, plural: str, key: ObjectKey) -> dict[str, Any] | None:
        """The newest body of an object: the watch's, or our last write's if newer."""
        found = self.cached(plural, key)
        mine = self.written.get((plural, key))
        if mine is not None:
            if found is None:
                # Deleted since we wrote it: the watch is the truth.
                self.written.pop((plural, key), None)
                return None
            if version_of(mine) > found.version:
                return mine
            self.written.pop((plural, key), None)
        return found.body() if found is not None else None

    def current(
        self, plural: str, key: ObjectKey, queue: WorkQueue | None
    ) -> dict[str, Any] | None:
        """The object to reconcile, or None: gone (its wake-ups are dropped), or being
        deleted (the garbage collector removes what it owns; nothing else to do)."""
        body = self.latest(plural, key)
        if body is None:
            if queue is not None:
                queue.forget(key)
            return None
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        return body

    def caught_up(self, plural: str, key: ObjectKey, version: int) -> None:
        """The watch shows ``version``: a copy of our own write is stale once the watch
        is as recent (else a unit written for the last time would keep one for good)."""
        mine = self.written.get((plural, key))
        if mine is not None and version_of(mine) <= version:
            del self.written[(plural, key)]

    def remember(self, plural: str, key: ObjectKey, body: dict[str, Any]) -> None:
        self.written[(plural, key)] = slim(body)

    def forget(self, plural: str, key: ObjectKey) -> None:
        self.written.pop((plural, key), None)
