"""The probes: liveness answers at once, readiness waits for the watches to sync."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from workunits.handlers.context import Context
from workunits.health import Check, application, not_ready
from workunits.kube.informer import Informer
from workunits.settings import Settings


def informer(resource: str) -> Informer:
    return Informer(resource, [], "", lambda body: body, lambda *_: None)


def context() -> Context:
    ctx = Context(settings=Settings(), kube=None)  # type: ignore[arg-type]  # not called
    ctx.unit_cache, ctx.jobs, ctx.pods = informer("workunits"), informer("jobs"), informer("pods")
    return ctx


async def probe(check: Check, path: str, standby: bool = False) -> tuple[int, str]:
    async with TestClient(TestServer(application(check, standby), host="127.0.0.1")) as client:
        response = await client.get(path)
        return response.status, await response.text()


def get(check: Check, path: str, standby: bool = False) -> tuple[int, str]:
    return asyncio.run(probe(check, path, standby))


def test_not_ready_until_every_watch_has_listed() -> None:
    ctx = context()
    assert not_ready(ctx) == "waiting for the first list of workunits, jobs, pods"
    assert ctx.unit_cache is not None and ctx.jobs is not None and ctx.pods is not None
    ctx.unit_cache.synced.set()
    ctx.pods.synced.set()
    assert not_ready(ctx) == "waiting for the first list of jobs"
    ctx.jobs.synced.set()
    assert not_ready(ctx) is None


def test_not_ready_before_startup_made_the_watches() -> None:
    assert not_ready(None) == "starting: the watches have not started"
    ctx = context()
    ctx.pods = None
    assert not_ready(ctx) is not None and "pods" in (not_ready(ctx) or "")


def test_liveness_answers_while_readiness_says_why_not() -> None:
    ctx = context()

    def check() -> str | None:
        return not_ready(ctx)

    assert get(check, "/healthz") == (200, "ok")
    status, text = get(check, "/readyz")
    assert status == 503
    assert text == "not ready: waiting for the first list of workunits, jobs, pods"
    for watch in (ctx.unit_cache, ctx.jobs, ctx.pods):
        assert watch is not None
        watch.synced.set()
    assert get(check, "/readyz") == (200, "ready")
    assert get(check, "/healthz") == (200, "ok")


def test_a_standby_is_live_and_ready() -> None:
    def never() -> str:
        return "the watches have not started"

    assert get(never, "/healthz", standby=True) == (200, "standby")
    assert get(never, "/readyz", standby=True) == (200, "standby")
