"""WorkUnit handlers: gather what is observed, call the pure core, apply its decision."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from workunits import GROUP, VERSION
from workunits.api.workunit import Phase, WorkUnit
from workunits.core import names
from workunits.core.observe import ObservedAttempt, PodFacts, observe_attempt, pod_facts
from workunits.core.unit import (
    INVALID_SPEC,
    CreateJob,
    DeleteJob,
    DeleteUnit,
    Dependency,
    Event,
    StoreResult,
    reconcile,
)
from workunits.handlers.context import Context, ObjectKey, ObjectLogger, pack
from workunits.handlers.state import context
from workunits.handlers.writes import failed_status, refuse, wake, write_status
from workunits.kube.client import JobConflict
from workunits.kube.errors import ApiError, PermanentError, TemporaryError
from workunits.kube.jobs import build_job, owner_reference
from workunits.metrics import METRICS

log = logging.getLogger(__name__)
PLURAL = "workunits"
UNIT_SELECTOR = {names.LABEL_UNIT_UID: kopf.PRESENT}


# ---- indices: kopf fills them from its watches before any other handler runs --------


@kopf.index(GROUP, VERSION, PLURAL)
def workunits_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): pack(body)}


@kopf.index(GROUP, VERSION, PLURAL)
def dependents_index(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> Any:
    deps = spec.get("dependsOn") or []
    return {(namespace, dep): name for dep in deps if isinstance(dep, str)}


@kopf.index("batch", "v1", "jobs", labels=UNIT_SELECTOR)
def jobs_index(labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
    return {labels[names.LABEL_UNIT_UID]: _slim_job(body)}


@kopf.index("", "v1", "pods", labels=UNIT_SELECTOR)
def pods_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> Any:
    job = labels.get("job-name") or labels.get("batch.kubernetes.io/job-name")
    return {(namespace, job): pod_facts(body)} if job else None


def _slim_job(body: Mapping[str, Any]) -> dict[str, Any]:
    """Only what decisions read of a Job: it keeps the cache small at large fan-outs."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": meta.get("labels"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "deletionTimestamp": meta.get("deletionTimestamp"),
            "ownerReferences": meta.get("ownerReferences"),
        },
        "status": body.get("status") or {},
    }


# ---- events: each one only queues the unit it concerns ------------------------------


def _priority(body: Mapping[str, Any]) -> int:
    value = (body.get("spec") or {}).get("priority", 0)
    return value if isinstance(value, int) else 0


@kopf.on.event(GROUP, VERSION, PLURAL)
async def workunit_event(
    type: str, namespace: str, name: str, body: kopf.Body, **kwargs: Any
) -> None:
    ctx = context()
    ctx.bind(kwargs)
    key = (namespace, name)
    assert ctx.units is not None
    meta = body.get("metadata", {})
    ctx.queue_parent(namespace, body)  # a WorkJob follows its units' status
    if type == "DELETED":
        ctx.units.forget(key)
        ctx.forget(PLURAL, key)
        ctx.seen.pop((PLURAL, key), None)
        ctx.created_jobs.pop(meta.get("uid", ""), None)
        _queue_dependents(ctx, key)
        return
    # Only a new object or a new spec (generation) drives a reconcile; status written by
    # us or by anyone else, labels and annotations do not (Jobs and timers do the rest).
    seen = (meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp")))
    if ctx.seen.get((PLURAL, key)) == seen:
        return
    ctx.seen[(PLURAL, key)] = seen
    ctx.units.add(key, _priority(body))


@kopf.on.event("batch", "v1", "jobs", labels=UNIT_SELECTOR)
async def job_event(namespace: str, body: kopf.Body, **kwargs: Any) -> None:
    ctx = context()
    ctx.bind(kwargs)
    for owner in body.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("kind") == "WorkUnit" and ctx.units is not None:
            ctx.units.add((namespace, owner.get("name")))


@kopf.on.event("", "v1", "pods", labels=UNIT_SELECTOR)
async def pod_event(namespace: str, labels: kopf.Labels, **kwargs: Any) -> None:
    ctx = context()
    ctx.bind(kwargs)
    job = labels.get("job-name") or labels.get("batch.kubernetes.io/job-name")
    jobs = ctx.indices.get("jobs_index")
    if not job or jobs is None or ctx.units is None:
        return
    for body in jobs.get(labels.get(names.LABEL_UNIT_UID), []):
        if body["metadata"]["name"] == job:
            for owner in body["metadata"].get("ownerReferences") or []:
                if owner.get("kind") == "WorkUnit":
                    ctx.units.add((namespace, owner.get("name")))


def _queue_dependents(ctx: Context, key: ObjectKey) -> None:
    index = ctx.indices.get("dependents_index")
    if index is None or ctx.units is None or key not in index:
        return
    for dependent in index[key]:
        ctx.units.add((key[0], dependent))


# ---- the reconcile ------------------------------------------------------------------


class _Dependencies(Mapping[str, Dependency]):
    """The units of one namespace, as the core sees dependencies (read lazily)."""

    def __init__(self, ctx: Context, namespace: str) -> None:
        self.ctx = ctx
        self.namespace = namespace

    def __getitem__(self, name: str) -> Dependency:
        body = self.ctx.latest(PLURAL, (self.namespace, name))
        if body is None:
            raise KeyError(name)
        phase = (body.get("status") or {}).get("phase")
        deps = (body.get("spec") or {}).get("dependsOn") or []
        known = phase in {p.value for p in Phase}
        return Dependency(
            Phase(str(phase)) if known else Phase.PENDING,
            tuple(d for d in deps if isinstance(d, str)),
        )

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _attempts(ctx: Context, unit: WorkUnit) -> list[ObservedAttempt]:
    jobs: dict[str, dict[str, Any]] = {}
    index = ctx.indices.get("jobs_index")
    if index is not None and unit.metadata.uid in index:
        for body in index[unit.metadata.uid]:
            jobs[body["metadata"]["name"]] = body
    pending = ctx.created_jobs.get(unit.metadata.uid, {})
    for name in list(pending):
        if name in jobs:
            del pending[name]  # the watch has it now
        else:
            jobs[name] = pending[name]
    pods_index = ctx.indices.get("pods_index")
    observed = []
    for name, body in jobs.items():
        key = (unit.metadata.namespace, name)
        pods: list[PodFacts] = list(pods_index[key]) if pods_index and key in pods_index else []
        attempt = observe_attempt(body, pods)
        if attempt is not None:
            observed.append(attempt)
    return observed


async def reconcile_unit(key: ObjectKey) -> None:
    ctx = context()
    body = ctx.current(PLURAL, key, ctx.units)
    if body is None:
        return
    meta = body.get("metadata") or {}
    logger = ObjectLogger(log, key)

    try:
        unit = WorkUnit.model_validate(body)
    except ValidationError as exc:
        await refuse(ctx, PLURAL, key, body, exc)
        return

    now = datetime.now(UTC)
    attempts = _attempts(ctx, unit)
    decision = reconcile(unit, attempts, _Dependencies(ctx, key[0]), now, random.random)
    old_status = body.get("status") or {}
    new_status = decision.status.dump()

    # Act first, then record: a Job created but not recorded is adopted next time.
    for action in decision.actions:
        if isinstance(action, CreateJob):
            manifest = build_job(unit, action.attempt, action.job_name, action.memory)
            try:
                created = await ctx.kube.create_job(manifest, unit.metadata.uid)
            except JobConflict as exc:
                new_status = {**old_status, "reason": "JobNameConflict", "message": str(exc)}
                decision.wake(None)
                _retry_later(ctx, key, 30)
                break
            except PermanentError as exc:
                if exc.status == 403:
                    _report_permission(ctx, str(exc))
                    _retry_later(ctx, key, 30)
                    return
                new_status = failed_status(
                    old_status,
                    unit.metadata.generation,
                    INVALID_SPEC,
                    f"the Job was refused: {exc}",
                )
                break
            ctx.created_jobs.setdefault(unit.metadata.uid, {})[action.job_name] = created
            logger.info("attempt %d: created Job %s", action.attempt, action.job_name)
        elif isinstance(action, DeleteJob):
            await ctx.kube.delete_job(key[0], action.job_name)
            logger.info("deleted Job %s (%s)", action.job_name, action.why)
        elif isinstance(action, StoreResult):
            ref = decision.status.result_ref
            assert ref is not None
            owner = owner_reference("WorkUnit", unit.metadata.name, unit.metadata.uid)
            labels = {
                names.LABEL_UNIT_UID: unit.metadata.uid,
                names.LABEL_MANAGED_BY: names.MANAGER,
            }
            await ctx.kube.put_config_map(
                key[0], ref.config_map, {ref.key: action.text}, owner, labels
            )
        elif isinstance(action, DeleteUnit):
            await ctx.kube.delete_object(PLURAL, key[0], key[1], unit.metadata.uid)
            logger.info("deleted the unit (%s)", action.why)
            return

    events = [a for a in decision.actions if isinstance(a, Event)]
    stored = await write_status(ctx, PLURAL, key, old_status, new_status, events, logger)
    if stored is not None:
        METRICS.unit_changed(old_status, stored.get("status") or {}, meta.get("creationTimestamp"))
        if new_status.get("phase") != old_status.get("phase"):
            _queue_dependents(ctx, key)
    wake(ctx.units, key, decision.wake_at, unit.spec.priority)


def _retry_later(ctx: Context, key: ObjectKey, seconds: float) -> None:
    assert ctx.units is not None
    ctx.units.add_at(key, asyncio.get_running_loop().time() + seconds)


def _report_permission(ctx: Context, message: str) -> None:
    if message not in ctx.missing_permission:
        ctx.missing_permission.add(message)
        log.error("missing permission: %s", message)


__all__ = ["ApiError", "TemporaryError", "reconcile_unit"]
