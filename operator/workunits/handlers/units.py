"""WorkUnit handlers: gather what is observed, call the pure core, apply its decision."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from kopf._cogs.structs.references import match_namespace
from pydantic import ValidationError

from workunits import API_VERSION, GROUP, VERSION
from workunits.api.workunit import Phase, WorkUnit
from workunits.core import names
from workunits.core.observe import ObservedAttempt, PodFacts, observe_attempt, pod_facts
from workunits.core.unit import (
    INVALID_SPEC,
    CreateJob,
    Decision,
    DeleteJob,
    DeleteUnit,
    Dependency,
    Event,
    StoreResult,
    reconcile,
    running_report_due,
)
from workunits.core.workjob import ChildUnit
from workunits.handlers.context import Context, ObjectKey, ObjectLogger, Packed, pack
from workunits.handlers.state import context
from workunits.handlers.workjobs import child_unit
from workunits.handlers.writes import (
    FORBIDDEN_RETRY_SECONDS,
    failed_status,
    forbidden,
    refuse,
    wake,
    write_status,
)
from workunits.kube.client import JobConflict
from workunits.kube.errors import ApiError, PermanentError, TemporaryError
from workunits.kube.informer import Informer, Lister
from workunits.kube.jobs import build_job, owner_reference
from workunits.metrics import METRICS
from workunits.settings import exact_namespaces, namespace_patterns

log = logging.getLogger(__name__)
PLURAL = "workunits"


# ---- WorkUnits, Jobs and pods: light watches of our own (kube/informer.py) ----------
# Each attempt makes about thirteen watch events (three of its unit, four of its Job,
# six of its pod, of which only the one or two after it ended are asked for). kopf's
# per-event machinery cost the operator most of its CPU and kept a memory of every
# object; these watches keep only what decisions read.


@dataclass(frozen=True, slots=True)
class UnitEntry:
    """A WorkUnit as the cache keeps it: the object packed, and what the watch's
    callbacks and the WorkJobs read of it at hand."""

    packed: Packed
    seen: tuple[Any, Any, bool]  # uid, generation, being deleted: what drives a reconcile
    depends_on: tuple[str, ...]
    priority: int
    workjob: str | None  # the owning WorkJob's name
    child: ChildUnit | None  # the unit as its WorkJob reads it, for a WorkJob's unit
    workjob_uid: str | None
    new: bool  # no status yet: no attempt has started


def unit_entry(body: Mapping[str, Any]) -> UnitEntry:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    labels = meta.get("labels") or {}
    deps = spec.get("dependsOn") or []
    priority = spec.get("priority", 0)
    workjob = _owner(meta, "WorkJob", API_VERSION)
    child = None
    workjob_uid = labels.get(names.LABEL_WORKJOB_UID)
    if workjob_uid:
        try:
            child = child_unit(labels, meta.get("name", ""), body)
        except (KeyError, ValueError):  # not one of ours after all: a label set by hand
            workjob_uid = None
    return UnitEntry(
        packed=pack(body),
        seen=(meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp"))),
        depends_on=tuple(d for d in deps if isinstance(d, str)) if isinstance(deps, list) else (),
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        workjob=workjob,
        child=child,
        workjob_uid=workjob_uid,
        new=not body.get("status"),
    )


def _owner(meta: Mapping[str, Any], kind: str, api_version: str | None = None) -> str | None:
    """The name of the object's owner of ``kind`` (and ``api_version``), if it has one."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == kind and api_version in (None, ref.get("apiVersion")):
            name = ref.get("name")
            return str(name) if name is not None else None
    return None


def _unit_changed(
    ctx: Context, kind: str, key: ObjectKey, new: UnitEntry | None, old: UnitEntry | None
) -> None:
    assert ctx.units is not None
    entry = new or old
    assert entry is not None
    if entry.workjob is not None and ctx.workjobs is not None:
        ctx.workjobs.add((key[0], entry.workjob))  # a WorkJob follows its units' status
    _index_dependencies(ctx, key, old.depends_on if old else (), new.depends_on if new else ())
    if new is None:
        ctx.units.forget(key)
        ctx.forget(PLURAL, key)
        ctx.created_jobs.pop(entry.seen[0] or "", None)
        _queue_dependents(ctx, key)
        return
    ctx.caught_up(PLURAL, key, new.packed.version)
    # Only a new object or a new spec (generation) drives a reconcile; status written by
    # us or by anyone else, labels and annotations do not (Jobs and timers do the rest).
    if old is None or old.seen != new.seen:
        # A new unit's Job goes ahead of reports on running ones: admission first.
        ctx.units.add(key, new.priority, first=new.new)


def _index_dependencies(
    ctx: Context, key: ObjectKey, before: tuple[str, ...], after: tuple[str, ...]
) -> None:
    """Keep ``ctx.dependents``: (namespace, name) -> the units that depend on it."""
    if before == after:
        return
    for dep in set(before) - set(after):
        names_ = ctx.dependents.get((key[0], dep))
        if names_ is not None:
            names_.discard(key[1])
            if not names_:
                del ctx.dependents[(key[0], dep)]
    for dep in set(after) - set(before):
        ctx.dependents.setdefault((key[0], dep), set()).add(key[1])


# ---- Jobs and pods: a light watch of our own (kube/informer.py) ----------------------


@dataclass(frozen=True, slots=True)
class JobEntry:
    """A Job as the cache keeps it: what decisions read of it as compact JSON (a tenth
    of the decoded size, which counts at tens of thousands of Jobs), and the few
    fields the watch's callbacks look at."""

    unit_uid: str | None
    unit: str | None  # the owning WorkUnit's name
    decisive: Any  # its conditions and deletion: a change here can alter a decision
    text: bytes

    def body(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.text)
        return decoded


def job_entry(body: Mapping[str, Any]) -> JobEntry:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    slim = {
        "metadata": {k: meta.get(k) for k in _JOB_METADATA},
        "status": {k: status[k] for k in _JOB_STATUS if k in status},
    }
    return JobEntry(
        unit_uid=(meta.get("labels") or {}).get(names.LABEL_UNIT_UID),
        unit=_owner(meta, "WorkUnit"),
        decisive=json.dumps([status.get("conditions"), meta.get("deletionTimestamp")]),
        text=json.dumps(slim, separators=(",", ":")).encode(),
    )


_JOB_METADATA = (
    "name",
    "namespace",
    "labels",
    "creationTimestamp",
    "deletionTimestamp",
    "ownerReferences",
)
_JOB_STATUS = ("conditions", "startTime", "completionTime")


def start_watches(ctx: Context) -> None:
    """Follow the WorkUnits, and the Jobs and pods of units (by label), in the namespaces
    the operator serves."""
    namespaces = ctx.settings.namespaces
    batch, core, custom = ctx.kube.batch, ctx.kube.core, ctx.kube.custom
    unit_listers: list[Lister]
    job_listers: list[Lister]
    pod_listers: list[Lister]
    if exact_namespaces(namespaces):
        unit_listers = [
            partial(custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL)
            for ns in namespaces
        ]
        job_listers = [partial(batch.list_namespaced_job, ns) for ns in namespaces]
        pod_listers = [partial(core.list_namespaced_pod, ns) for ns in namespaces]
        accept = None
    else:
        unit_listers = [partial(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)]
        job_listers = [batch.list_job_for_all_namespaces]
        pod_listers = [core.list_pod_for_all_namespaces]
        accept = _namespace_filter(namespaces) if namespaces else None
    ctx.unit_cache = Informer(
        PLURAL,
        unit_listers,
        "",
        unit_entry,
        partial(_unit_changed, ctx),
        group=lambda _, unit: unit.workjob_uid,
        accept=accept,
    )
    selector = names.LABEL_UNIT_UID
    ctx.jobs = Informer(
        "jobs",
        job_listers,
        selector,
        job_entry,
        partial(_job_changed, ctx),
        group=lambda _, job: job.unit_uid,
        accept=accept,
    )
    ctx.pods = Informer(
        "pods",
        pod_listers,
        selector,
        pod_facts,
        partial(_pod_changed, ctx),
        fields=ENDED_PODS,
        group=lambda key, pod: (key[0], pod.job_name) if pod.job_name else None,
        accept=accept,
    )
    ctx.unit_cache.start()
    ctx.jobs.start()
    ctx.pods.start()


# Only pods that have ended are followed: a pod is written some six times in its life
# (created, scheduled, running, ended, released by the Job controller, deleted) and
# decisions read it only once it has ended, for its exit code, its reason, its result or
# a disruption. The server filters, so a pod costs the API server and the operator one
# or two events instead of six. Why a pod has not started is read when the start
# timeout comes (``_started``).
ENDED_PODS = "status.phase!=Pending,status.phase!=Running"


def _namespace_filter(namespaces: list[str]) -> Callable[[str], bool]:
    patterns = namespace_patterns(namespaces)
    return lambda namespace: any(match_namespace(namespace, p) for p in patterns)


def _job_changed(
    ctx: Context, kind: str, key: ObjectKey, new: JobEntry | None, old: JobEntry | None
) -> None:
    # The Job controller updates a Job a few times per attempt; only its ending, its
    # deletion or its removal can change a decision (timers cover the rest).
    if new is None:
        ctx.disrupted_pods.pop(key, None)
    if new is None or old is None or new.decisive != old.decisive:
        _queue_owner(ctx, key[0], new or old)


def _pod_changed(ctx: Context, kind: str, key: ObjectKey, new: Any, old: Any) -> None:
    # Only ended pods reach here (ENDED_PODS). The owner is queued when what decisions
    # read of one changes, not when the Job controller merely releases it.
    pod: PodFacts = new or old
    if new is None and "DisruptionTarget" in old.conditions and old.job_name:
        # An evicted pod can be gone before a reconcile sees it: keep it until its Job
        # goes, so the disruption is counted whenever the unit is reconciled.
        ctx.disrupted_pods.setdefault((key[0], old.job_name), {})[key] = old
    if _pod_signature(new) == _pod_signature(old) or ctx.jobs is None or not pod.job_name:
        return
    job = ctx.jobs.get((key[0], pod.job_name))
    if job is not None:  # else the Job's own event queues the unit
        _queue_owner(ctx, key[0], job)


def _pod_signature(pod: PodFacts | None) -> Any:
    if pod is None or pod.phase not in ("Succeeded", "Failed"):
        disrupted = pod is not None and "DisruptionTarget" in pod.conditions
        return ("Running", disrupted)
    return (pod.phase, pod.exit_code, pod.reason, pod.message, "DisruptionTarget" in pod.conditions)


def _queue_owner(ctx: Context, namespace: str, job: JobEntry | None) -> None:
    if job is not None and job.unit is not None and ctx.units is not None:
        ctx.units.add((namespace, job.unit))


def _queue_dependents(ctx: Context, key: ObjectKey) -> None:
    if ctx.units is None:
        return
    for dependent in ctx.dependents.get(key, ()):
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


async def _attempts(ctx: Context, unit: WorkUnit, now: datetime) -> list[ObservedAttempt]:
    assert ctx.jobs is not None and ctx.pods is not None
    jobs: dict[str, dict[str, Any]] = {
        key[1]: entry.body() for key, entry in ctx.jobs.group(unit.metadata.uid).items()
    }
    pending = ctx.created_jobs.get(unit.metadata.uid, {})
    for name in list(pending):
        if name in jobs:
            del pending[name]  # the watch has it now
        else:
            jobs[name] = pending[name]
    observed = []
    namespace = unit.metadata.namespace
    timeout = timedelta(seconds=unit.spec.start_timeout_seconds)
    for name, body in jobs.items():
        attempt = observe_attempt(
            body, _pods(ctx, namespace, name, ctx.pods.group((namespace, name)))
        )
        if attempt is None:
            continue
        if _start_in_question(attempt, now, timeout):
            attempt = await _started(ctx, unit, body, attempt)
        observed.append(attempt)
    return observed


def _pods(
    ctx: Context, namespace: str, job: str, known: Mapping[ObjectKey, PodFacts]
) -> list[PodFacts]:
    """A Job's pods, with its disrupted ones that are already gone."""
    gone = ctx.disrupted_pods.get((namespace, job), {})
    return [*known.values(), *(p for k, p in gone.items() if k not in known)]


def _start_in_question(attempt: ObservedAttempt, now: datetime, timeout: timedelta) -> bool:
    """A running attempt old enough that a pod of it may be past the start timeout:
    whether its current pod has started needs the pods as they are (ended ones alone
    cannot say)."""
    return (
        attempt.state == "Active"
        and not attempt.deleting
        and attempt.created is not None
        and now >= attempt.created + timeout
    )


async def _started(
    ctx: Context, unit: WorkUnit, job: Mapping[str, Any], attempt: ObservedAttempt
) -> ObservedAttempt:
    """The attempt with its pods as they are now (the watch shows only ended ones): has
    its current pod run, or why not. Read each time, never remembered, so that a
    restarted operator decides the same."""
    namespace = unit.metadata.namespace
    selector = f"{names.LABEL_UNIT_UID}={unit.metadata.uid},{names.LABEL_ATTEMPT}={attempt.attempt}"
    listed = await ctx.kube.list_pods(namespace, selector)
    pods = {(namespace, p.name): p for p in map(pod_facts, listed)}
    return observe_attempt(job, _pods(ctx, namespace, attempt.job_name, pods)) or attempt


async def reconcile_unit(key: ObjectKey) -> None:
    ctx = context()
    await ctx.watches_synced()  # decide only once every Job and pod is known
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
    attempts = await _attempts(ctx, unit, now)
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
                    await forbidden(ctx, PLURAL, key, body, exc, logger)
                    _retry_later(ctx, key, FORBIDDEN_RETRY_SECONDS)
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
            try:
                await ctx.kube.put_config_map(
                    key[0], ref.config_map, {ref.key: action.text}, owner, labels
                )
            except PermanentError as exc:
                if exc.status != 403:
                    raise
                await forbidden(ctx, PLURAL, key, body, exc, logger)
                _retry_later(ctx, key, FORBIDDEN_RETRY_SECONDS)
                return
        elif isinstance(action, DeleteUnit):
            await ctx.kube.delete_object(PLURAL, key[0], key[1], unit.metadata.uid)
            logger.info("deleted the unit (%s)", action.why)
            return

    delay = timedelta(seconds=ctx.settings.running_delay)
    job_created = _job_created(decision, attempts, now)
    due = running_report_due(old_status, new_status, job_created, now, delay)
    if due is not None:
        decision.wake(due)  # the status and its Events are written then
        wake(ctx.units, key, decision.wake_at, unit.spec.priority)
        return

    events = [a for a in decision.actions if isinstance(a, Event)]
    stored = await write_status(ctx, PLURAL, key, old_status, new_status, events, logger)
    if stored is not None:
        METRICS.unit_changed(old_status, stored.get("status") or {}, meta.get("creationTimestamp"))
        if new_status.get("phase") != old_status.get("phase"):
            _queue_dependents(ctx, key)
    wake(ctx.units, key, decision.wake_at, unit.spec.priority)


def _job_created(
    decision: Decision, attempts: list[ObservedAttempt], now: datetime
) -> datetime | None:
    """When the Job of the attempt the decision reports was created."""
    if any(isinstance(a, CreateJob) for a in decision.actions):
        return now
    number = decision.status.attempts
    return next((a.created for a in attempts if a.attempt == number), None)


def _retry_later(ctx: Context, key: ObjectKey, seconds: float) -> None:
    assert ctx.units is not None
    ctx.units.add_at(key, asyncio.get_running_loop().time() + seconds)


__all__ = ["ApiError", "TemporaryError", "reconcile_unit"]
