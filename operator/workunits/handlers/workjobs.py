"""WorkJob handlers: gather the WorkJob's units and inputs, call the pure core, apply.

The WorkJob's children are WorkUnits labelled with its UID. Any change to one of them
(its status included) queues the WorkJob; the WorkJob's own status changes do not.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from workunits import API_VERSION, GROUP, VERSION
from workunits.api.workjob import WorkJob
from workunits.api.workunit import Phase
from workunits.core import names
from workunits.core.timefmt import parse_time
from workunits.core.unit import Event
from workunits.core.workjob import (
    CancelUnit,
    ChildUnit,
    CreateUnit,
    DeleteUnit,
    DeleteWorkJob,
    JobDecision,
    StoreResults,
    inputs_needed,
    reconcile,
)
from workunits.handlers.context import Context, ObjectKey, ObjectLogger, pack, version_of
from workunits.handlers.state import context
from workunits.handlers.writes import (
    FORBIDDEN_RETRY_SECONDS,
    failed_status,
    forbidden,
    refuse,
    wake,
    write_status,
)
from workunits.kube.errors import ApiError, PermanentError
from workunits.kube.jobs import owner_reference

log = logging.getLogger(__name__)
PLURAL = "workjobs"
CREATE_CONCURRENCY = 16
_PHASES = {p.value for p in Phase}


@kopf.index(GROUP, VERSION, PLURAL)
async def workjobs_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): pack(body)}


def child_unit(labels: Mapping[str, str], name: str, body: Mapping[str, Any]) -> ChildUnit:
    """A WorkJob's unit, reduced to what the WorkJob's decisions read (the unit cache
    keeps one for each unit labelled with a WorkJob's uid)."""
    status = body.get("status") or {}
    phase = status.get("phase")
    result = status.get("result")
    if result is None and status.get("resultRef"):
        result = _RESULT_IN_CONFIGMAP
    return ChildUnit(
        task=labels[names.LABEL_TASK],
        index=int(labels[names.LABEL_INDEX]),
        name=name,
        phase=Phase(phase) if phase in _PHASES else None,
        reason=status.get("reason"),
        message=status.get("message"),
        result=result,
        rerun=int(labels.get(names.LABEL_RERUN, "0") or 0),
        created=parse_time((body.get("metadata") or {}).get("creationTimestamp")),
        cancel_requested=bool((body.get("spec") or {}).get("cancel")),
    )


# A marker for a result kept in the unit's ConfigMap: read it before deciding.
_RESULT_IN_CONFIGMAP = object()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def workjob_event(
    type: str, namespace: str, name: str, body: kopf.Body, **kwargs: Any
) -> None:
    ctx = context()
    ctx.bind(kwargs)
    assert ctx.workjobs is not None
    key = (namespace, name)
    meta = body.get("metadata", {})
    ctx.caught_up(PLURAL, key, version_of(body))
    if type == "DELETED":
        ctx.workjobs.forget(key)
        ctx.forget(PLURAL, key)
        ctx.seen.pop((PLURAL, key), None)
        ctx.config_maps.pop(key, None)
        return
    seen = (meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp")))
    if ctx.seen.get((PLURAL, key)) == seen:
        return
    ctx.seen[(PLURAL, key)] = seen
    ctx.workjobs.add(key)


async def _children(ctx: Context, key: ObjectKey, workjob: WorkJob) -> list[ChildUnit]:
    assert ctx.unit_cache is not None
    found = [e.child for e in ctx.unit_cache.group(workjob.metadata.uid).values() if e.child]
    out = []
    for child in found:
        if child.result is _RESULT_IN_CONFIGMAP:
            child = await _with_stored_result(ctx, key, child)
        out.append(child)
    return out


async def _with_stored_result(ctx: Context, key: ObjectKey, child: ChildUnit) -> ChildUnit:
    unit = ctx.latest("workunits", (key[0], child.name)) or {}
    ref = (unit.get("status") or {}).get("resultRef") or {}
    data = await _config_map(ctx, key, ref.get("configMap", ""))
    text = (data or {}).get(ref.get("key", "result"))
    try:
        result = json.loads(text) if text is not None else None
    except ValueError:
        result = text
    return ChildUnit(**{**child.__dict__, "result": result})


async def _config_map(ctx: Context, key: ObjectKey, name: str) -> dict[str, str] | None:
    """A ConfigMap in the WorkJob's namespace, from what the operator last read or wrote
    of it for this WorkJob, else from the API (None: it is missing)."""
    known = ctx.config_maps.setdefault(key, {})
    if name in known:
        return known[name]
    try:
        body = await ctx.kube.read_config_map(key[0], name)
    except PermanentError as exc:
        if exc.status == 404:
            return None
        raise
    data: dict[str, str] = body.get("data") or {}
    known[name] = data
    return data


async def reconcile_workjob(key: ObjectKey) -> None:
    ctx = context()
    await ctx.watches_synced()  # decide only once every unit is known
    body = ctx.current(PLURAL, key, ctx.workjobs)
    if body is None:
        return
    logger = ObjectLogger(log, key)
    try:
        workjob = WorkJob.model_validate(body)
    except ValidationError as exc:
        await refuse(ctx, PLURAL, key, body, exc)
        return

    try:
        decision = await _decide(ctx, key, workjob)
        if not await _act(ctx, key, body, workjob, decision, logger):
            return
    except PermanentError as exc:
        if exc.status != 403:
            raise
        await forbidden(ctx, PLURAL, key, body, exc, logger)
        assert ctx.workjobs is not None
        ctx.workjobs.add_at(key, asyncio.get_running_loop().time() + FORBIDDEN_RETRY_SECONDS)
        return

    old = body.get("status") or {}
    events = [a for a in decision.actions if isinstance(a, Event)]
    await write_status(ctx, PLURAL, key, old, decision.status.dump(), events, logger)
    if decision.status.phase is not None and Phase(decision.status.phase).finished:
        ctx.config_maps.pop(key, None)  # a re-run reads them again
    wake(ctx.workjobs, key, decision.wake_at)


async def _decide(ctx: Context, key: ObjectKey, workjob: WorkJob) -> JobDecision:
    """The core's decision, with the ConfigMaps it reads loaded first."""
    children = await _children(ctx, key, workjob)
    inputs: dict[str, Any] = {}
    for name in inputs_needed(workjob):
        inputs[name] = await _config_map(ctx, key, name)
    now = datetime.now(UTC)
    decision = reconcile(workjob, children, inputs, now)
    for _ in range(3):
        if not decision.wanted:
            break
        for name in decision.wanted:
            inputs[name] = await _config_map(ctx, key, name)
        decision = reconcile(workjob, children, inputs, now)
    return decision


async def _act(
    ctx: Context,
    key: ObjectKey,
    body: Mapping[str, Any],
    workjob: WorkJob,
    decision: JobDecision,
    logger: ObjectLogger,
) -> bool:
    """Carry out the decision's actions; False when the WorkJob needs nothing more now
    (it was failed or deleted)."""
    namespace = key[0]
    owner = owner_reference("WorkJob", workjob.metadata.name, workjob.metadata.uid)
    labels = {names.LABEL_WORKJOB_UID: workjob.metadata.uid, names.LABEL_MANAGED_BY: names.MANAGER}
    creates = [a for a in decision.actions if isinstance(a, CreateUnit)]
    for action in decision.actions:
        if isinstance(action, StoreResults):
            # What the server holds after the merge: results stored before a restart
            # included, which the merged data alone would leave out.
            stored = await ctx.kube.merge_config_map(
                namespace, action.config_map, action.data, owner, labels
            )
            ctx.config_maps.setdefault(key, {})[action.config_map] = stored
        elif isinstance(action, CancelUnit):
            await _patch_unit(ctx, namespace, action.name, {"spec": {"cancel": True}})
        elif isinstance(action, DeleteUnit):
            await _delete_unit(ctx, namespace, action.name)
            logger.info("deleted unit %s (%s)", action.name, action.why)
        elif isinstance(action, DeleteWorkJob):
            await ctx.kube.delete_object(PLURAL, namespace, key[1], workjob.metadata.uid)
            logger.info("deleted the WorkJob (%s)", action.why)
            return False
    if creates:
        try:
            await _create_units(ctx, namespace, owner, creates)
        except UnitConflict as exc:
            await _fail(ctx, key, body, "UnitNameConflict", str(exc), logger)
            return False
        except PermanentError as exc:  # the API server refused a unit: the template's fault
            if exc.status == 403:
                raise
            await _fail(ctx, key, body, "InvalidSpec", f"a unit was refused: {exc}", logger)
            return False
        logger.info("created %d units", len(creates))

    return True


class UnitConflict(Exception):
    """A unit's name is taken by a WorkUnit that is not this WorkJob's to adopt."""


async def _create_units(
    ctx: Context, namespace: str, owner: dict[str, Any], creates: list[CreateUnit]
) -> None:
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(action: CreateUnit) -> None:
        body = {
            "apiVersion": API_VERSION,
            "kind": "WorkUnit",
            "metadata": {
                "name": action.name,
                "namespace": namespace,
                "labels": action.labels,
                "annotations": action.annotations,
                "ownerReferences": [owner],
            },
            "spec": {**action.spec, "priority": action.priority},
        }
        async with gate:
            try:
                await ctx.kube.create_object("workunits", namespace, body)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                await _adopt(ctx, namespace, owner, action)

    await asyncio.gather(*(create(a) for a in creates))


async def _adopt(ctx: Context, namespace: str, owner: dict[str, Any], action: CreateUnit) -> None:
    """The unit exists: fine when it is ours already; adopted when it is an orphan of
    this WorkJob's name (deleted with --cascade=orphan, then applied again); else a
    conflict the WorkJob reports."""
    unit = await ctx.kube.read_object("workunits", namespace, action.name)
    meta = unit.get("metadata") or {}
    labels = meta.get("labels") or {}
    controllers = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    if any(o.get("uid") == owner["uid"] for o in controllers):
        return
    same_place = all(
        labels.get(key) == action.labels.get(key)
        for key in (names.LABEL_WORKJOB, names.LABEL_TASK, names.LABEL_INDEX)
    )
    if controllers or not same_place:
        raise UnitConflict(
            f"WorkUnit {action.name} already exists and is not this WorkJob's: "
            "delete it, or rename the WorkJob"
        )
    patch = {
        "metadata": {
            "labels": {names.LABEL_WORKJOB_UID: owner["uid"]},
            "ownerReferences": [owner],
            "resourceVersion": meta.get("resourceVersion"),
        }
    }
    await ctx.kube.patch_object("workunits", namespace, action.name, patch)
    log.info("adopted the orphaned unit %s/%s", namespace, action.name)


async def _fail(
    ctx: Context,
    key: ObjectKey,
    body: Mapping[str, Any],
    reason: str,
    message: str,
    logger: ObjectLogger,
) -> None:
    """End the WorkJob for a fault only a person can mend, saying what it is."""
    old = body.get("status") or {}
    meta = body.get("metadata") or {}
    new = failed_status(old, meta.get("generation"), reason, message)
    await write_status(ctx, PLURAL, key, old, new, [Event("Warning", reason, message)], logger)


async def _patch_unit(ctx: Context, namespace: str, name: str, patch: dict[str, Any]) -> None:
    try:
        await ctx.kube.patch_object("workunits", namespace, name, patch)
    except PermanentError as exc:
        if exc.status != 404:
            raise


async def _delete_unit(ctx: Context, namespace: str, name: str) -> None:
    unit = ctx.latest("workunits", (namespace, name))
    uid = ((unit or {}).get("metadata") or {}).get("uid")
    if uid:
        await ctx.kube.delete_object("workunits", namespace, name, uid)
