"""The operator's probes: ``/healthz`` for liveness, ``/readyz`` for readiness.

Liveness answers while the event loop does. The first list of every unit, Job and pod
can take minutes on a large cluster, and a pod killed for it would only start the list
over, so liveness does not wait for it. Readiness does: until the operator's own
watches have listed what exists, its caches are partial, and a replica that says it
is ready would let a rollout, or a person, take it for a working one.

A standby (leader election) is ready: it only waits for the Lease, and a rollout that
waited for it to lead would never end, since the leader it replaces holds the Lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from workunits.handlers.context import Context

log = logging.getLogger(__name__)

Check = Callable[[], str | None]  # why the operator is not ready; None: it is


def not_ready(ctx: Context | None) -> str | None:
    """Why the operator is not ready yet, or None once its watches have synced.

    Ready is when ``ctx.watches_synced()`` would return at once; before the watches
    exist (startup has not run) it would too, so that is not ready either.
    """
    if ctx is None:
        return "starting: the watches have not started"
    watches = {"workunits": ctx.unit_cache, "jobs": ctx.jobs, "pods": ctx.pods}
    waiting = [name for name, w in watches.items() if w is None or not w.synced.is_set()]
    if waiting:
        return "waiting for the first list of " + ", ".join(waiting)
    return None


def application(ready: Check, standby: bool = False) -> web.Application:
    """The two probes: liveness always answers; readiness answers 503 and why until
    ``ready`` says the operator is."""
    alive = "standby" if standby else "ok"

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text=alive)

    async def readyz(_: web.Request) -> web.Response:
        why = None if standby else ready()
        if why is not None:
            return web.Response(status=503, text=f"not ready: {why}")
        return web.Response(text=alive if standby else "ready")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(address: str, port: int, ready: Check, standby: bool = False) -> web.AppRunner:
    """Serve both probes on ``address:port`` from the running event loop."""
    runner = web.AppRunner(application(ready, standby), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    log.info("serving /healthz and /readyz on http://%s:%d", address, port)
    return runner
