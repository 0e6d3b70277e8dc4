"""The one way reconcilers write what they decided: a status patch, then the Events,
then the next wake-up. Shared by WorkUnits and WorkJobs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from workunits.api.common import Condition, validation_message
from workunits.api.workunit import Phase
from workunits.core.conditions import phase_conditions, set_condition
from workunits.core.timefmt import format_time
from workunits.core.unit import INVALID_SPEC, Event
from workunits.handlers.context import Context, ObjectKey, ObjectLogger
from workunits.handlers.queue import WorkQueue
from workunits.kube.errors import PermanentError

log = logging.getLogger(__name__)


def failed_status(
    old: Mapping[str, Any], generation: int | None, reason: str, message: str
) -> dict[str, Any]:
    """``old`` made Failed for ``reason``, with the standard conditions to match."""
    stamp = format_time(datetime.now(UTC))
    message = message[:512]
    conditions = [Condition.model_validate(c) for c in old.get("conditions") or []]
    conditions = phase_conditions(
        conditions, Phase.FAILED, reason, message, "Running", stamp, generation
    )
    return {
        **old,
        "phase": Phase.FAILED.value,
        "reason": reason,
        "message": message,
        "completionTime": old.get("completionTime") or stamp,
        "conditions": [c.dump() for c in conditions],
        "observedGeneration": generation,
    }


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch from the old status to the new: changed keys, and None for removed."""
    patch = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


async def write_status(
    ctx: Context,
    plural: str,
    key: ObjectKey,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    events: Iterable[Event],
    logger: ObjectLogger,
) -> dict[str, Any] | None:
    """Patch the status when it changed, then post the Events the change brings.

    Returns the object as stored, or None when nothing was written (no change, or the
    object is gone). Events follow a successful write only, so none tells of a state
    that was never recorded.
    """
    patch = status_patch(old, new)
    if not patch:
        logger.debug("nothing to do")
        return None
    try:
        stored = await ctx.kube.patch_status(plural, key[0], key[1], patch)
    except PermanentError as exc:
        if exc.status == 404:
            return None
        raise
    ctx.remember(plural, key, stored)
    _check_stored(logger, patch, stored.get("status") or {})
    if new.get("phase") != old.get("phase"):
        logger.info("phase %s -> %s (%s)", old.get("phase"), new.get("phase"), new.get("reason"))
    if ctx.settings.events:
        for event in events:
            await ctx.kube.post_event(stored, event.type, event.reason, event.message)
    return stored


def _check_stored(logger: ObjectLogger, sent: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
    """Say so when the API server did not keep what we wrote (a field it pruned)."""
    for field, value in sent.items():
        if value is not None and stored.get(field) != value:
            logger.warning("status.%s was not stored as sent (pruned by the schema?)", field)


def wake(
    queue: WorkQueue | None, key: Hashable, moment: datetime | None, priority: int = 0
) -> None:
    """Reconcile ``key`` again at ``moment`` (a little after: timestamps are rounded)."""
    if queue is None or moment is None:
        return
    delay = (moment - datetime.now(UTC)).total_seconds()
    queue.add_at(key, asyncio.get_running_loop().time() + max(delay, 0) + 0.05, priority)


async def refuse(
    ctx: Context, plural: str, key: ObjectKey, body: Mapping[str, Any], exc: ValidationError
) -> None:
    """A spec the schema let through but the models refuse: Failed, InvalidSpec, once."""
    message = validation_message(exc)
    status = body.get("status") or {}
    if status.get("reason") == INVALID_SPEC and status.get("message") == message:
        return
    meta = body.get("metadata") or {}
    new = failed_status(status, meta.get("generation"), INVALID_SPEC, message)
    stored = await ctx.kube.patch_status(plural, key[0], key[1], status_patch(status, new))
    ctx.remember(plural, key, stored)
    log.warning("%s/%s: invalid spec: %s", key[0], key[1], message)


FORBIDDEN_RETRY_SECONDS = 30


async def forbidden(
    ctx: Context,
    plural: str,
    key: ObjectKey,
    body: Mapping[str, Any],
    exc: PermanentError,
    logger: ObjectLogger,
) -> None:
    """The operator lacks a permission it needs for this object: say so on the object
    (a Stalled condition naming the request, and a Warning Event), once in the log, and
    try again later. The phase is left as it is; the next write that goes through
    clears the condition."""
    message = str(exc)[:512]
    if message not in ctx.missing_permission:
        ctx.missing_permission.add(message)
        log.error("missing permission: %s", message)
    old = body.get("status") or {}
    conditions = [Condition.model_validate(c) for c in old.get("conditions") or []]
    stamp = format_time(datetime.now(UTC))
    generation = (body.get("metadata") or {}).get("generation")
    conditions = set_condition(
        conditions, "Stalled", "True", "Forbidden", message, stamp, generation
    )
    new = {**old, "conditions": [c.dump() for c in conditions]}
    try:
        await write_status(
            ctx, plural, key, old, new, [Event("Warning", "Forbidden", message)], logger
        )
    except PermanentError as again:  # not even the status may be written: the log says it
        logger.debug("status not written: %s", again)
