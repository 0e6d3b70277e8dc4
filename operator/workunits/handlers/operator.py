"""Starting and stopping the operator: kopf's settings, the context, the workers."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf
from aiohttp import web
from kubernetes import client

from workunits import health, logs, metrics
from workunits.handlers import units, workjobs
from workunits.handlers.context import Context
from workunits.handlers.queue import WorkQueue
from workunits.handlers.state import context, install
from workunits.kube.client import Kube, load_configuration
from workunits.kube.lease import Elector, identity
from workunits.settings import Settings, exact_namespaces, namespace_patterns

log = logging.getLogger(__name__)
_settings = Settings()
_health: web.AppRunner | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


class _NoDiffBase(kopf.DiffBaseStorage):
    """No essence to build or keep: the operator has no change-detecting handlers, yet
    kopf would deep-copy an essence of every object on every watch event for them."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    ours = _settings
    # Event handlers and indices only: kopf writes no annotations or finalizers of
    # its own on our objects, so every write is the operator's deliberate one.
    settings.persistence.diffbase_storage = _NoDiffBase()
    settings.posting.enabled = ours.events
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # No batching.worker_limit: with indices, kopf holds every object's worker until all
    # objects are indexed, so a limit below the number of Jobs or pods deadlocks the
    # start-up (nolar/kopf#1243). Our own work is bounded by the queues' workers.
    settings.networking.request_timeout = 60
    settings.execution.max_workers = 8

    # Exact namespace names need no cluster-wide view: kopf then neither lists
    # namespaces nor watches CRDs, so a Role in each namespace is enough (C11).
    # The cost: CRDs installed after the operator started are seen on its restart.
    settings.scanning.disabled = exact_namespaces(ours.namespaces)

    ctx = Context(settings=ours, kube=Kube.from_environment(ours.api_threads))
    ctx.units = WorkQueue(metrics.METRICS.timed("workunit", units.reconcile_unit), ours.workers)
    ctx.workjobs = WorkQueue(
        metrics.METRICS.timed("workjob", workjobs.reconcile_workjob), max(2, ours.workers // 2)
    )
    ctx.units.start()
    ctx.workjobs.start()
    install(ctx)
    units.start_watches(ctx)
    if ours.metrics_port:
        try:
            await metrics.serve(ours.bind_address, ours.metrics_port, context)
        except OSError as exc:  # taken, or not an address of this host: stop, do not retry
            raise kopf.PermanentError(
                f"cannot serve metrics on {ours.bind_address}:{ours.metrics_port}: {exc}"
            ) from exc
    if ours.health_port:
        await _serve_health(ours)
    log.info(
        "workunits operator started: %d workers, namespaces: %s",
        ours.workers,
        ",".join(ours.namespaces) or "all",
    )


async def _serve_health(settings: Settings) -> None:
    """The probes, served once startup has run, so that an answer still means the
    operator is up (tests and hack/run.sh wait for one): live from then on, ready once
    the watches startup began have synced."""
    global _health
    try:
        _health = await health.serve(settings.bind_address, settings.health_port, _readiness)
    except OSError as exc:
        raise kopf.PermanentError(
            f"cannot serve health on {settings.bind_address}:{settings.health_port}: {exc}"
        ) from exc


def _readiness() -> str | None:
    try:
        ctx = context()
    except RuntimeError:  # startup has not installed it
        return health.not_ready(None)
    return health.not_ready(ctx)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    global _health
    await metrics.stop()
    if _health is not None:
        await _health.cleanup()
        _health = None
    ctx = context()
    for informer in (ctx.jobs, ctx.pods):
        if informer is not None:
            informer.stop()
    for queue in (ctx.units, ctx.workjobs):
        if queue is not None:
            await queue.stop()
    ctx.kube.pool.shutdown(wait=False, cancel_futures=True)


def run(settings: Settings) -> None:
    """Run the operator until it is stopped (SIGINT/SIGTERM)."""
    configure(settings)
    kopf.configure(
        verbose=settings.verbose,
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
        log_prefix=None,  # text: a [namespace/name] prefix; JSON: an "object" field
    )
    logs.install()
    if not settings.verbose:
        # kopf reports every event handler call at info: too much for a busy operator.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    asyncio.run(_main(settings))


async def _main(settings: Settings) -> None:
    async def operate() -> None:
        await kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=namespace_patterns(settings.namespaces),
            standalone=True,
        )

    if not settings.leader_elect:
        await operate()
        return

    elector = Elector(
        api=client.ApiClient(load_configuration()),
        namespace=settings.lease_namespace,
        name=settings.lease_name,
        identity=identity(),
        lease_duration=settings.lease_duration,
        renew_deadline=settings.lease_duration * 2 / 3,
        retry_period=max(settings.lease_duration / 7, 0.5),
    )
    standby = (
        await health.serve(settings.bind_address, settings.health_port, _readiness, standby=True)
        if settings.health_port
        else None
    )
    try:
        await elector.acquire()
    finally:
        if standby is not None:
            await standby.cleanup()

    def lost() -> None:
        # Another replica may lead by now: stop at once, with no further write.
        logging.shutdown()
        os._exit(1)

    keeper = asyncio.create_task(elector.keep(lost))
    try:
        await operate()
    finally:
        keeper.cancel()
        await elector.release()
