"""Leader election on a coordination.k8s.io Lease, so that one replica acts at a time.

A replica becomes the leader by writing its identity into the Lease when the Lease is
free or expired, and stays leader by renewing it. Writes use the Lease's
resourceVersion, so two replicas can never both win the same term. A leader that
cannot renew before ``renew_deadline`` stops at once (the process exits, to be
restarted as a standby) rather than risk acting beside a new leader; a leader that
stops cleanly hands the Lease back so a standby takes over without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


def identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Elector:
    api: client.ApiClient
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        self.coordination = client.CoordinationV1Api(self.api)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args))

    def _spec(self, transitions: int, acquired: datetime | None) -> dict[str, Any]:
        now = _now()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": _micro(acquired or now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this replica holds the Lease afterwards."""
        try:
            lease = await self._call(
                self.coordination.read_namespaced_lease, self.name, self.namespace
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, exc.reason)
                return False
            body = {
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0, None),
            }
            try:
                await self._call(self.coordination.create_namespaced_lease, self.namespace, body)
            except ApiException as create_error:
                if create_error.status != 409:
                    log.warning("cannot create Lease: %s", create_error.reason)
                return False
            log.info("became the leader (new Lease %s/%s)", self.namespace, self.name)
            return True

        spec = lease.spec
        holder = spec.holder_identity or ""
        renewed = spec.renew_time or spec.acquire_time
        duration = spec.lease_duration_seconds or self.lease_duration
        mine = holder == self.identity
        expired = renewed is None or _now() > renewed + timedelta(seconds=duration)
        if not mine and holder and not expired:
            return False
        transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
        body = {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": lease.metadata.resource_version,
            },
            "spec": self._spec(transitions, spec.acquire_time if mine else None),
        }
        try:
            await self._call(
                self.coordination.replace_namespaced_lease, self.name, self.namespace, body
            )
        except ApiException as exc:
            if exc.status != 409:  # 409: another replica wrote first; it won this round
                log.warning("cannot update Lease: %s", exc.reason)
            return False
        if not mine:
            log.info(
                "became the leader (Lease %s/%s, previous holder %r)",
                self.namespace,
                self.name,
                holder or None,
            )
        return True

    async def acquire(self) -> None:
        """Wait until this replica is the leader."""
        log.info(
            "waiting to lead (Lease %s/%s, identity %s)", self.namespace, self.name, self.identity
        )
        while not await self.try_acquire_or_renew():
            await asyncio.sleep(self.retry_period)

    async def keep(self, lost: Callable[[], None]) -> None:
        """Renew the Lease for as long as it lasts; call ``lost`` when it cannot be."""
        last = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.retry_period)
            if await self.try_acquire_or_renew():
                last = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - last > self.renew_deadline:
                log.error("lost the Lease %s/%s: stopping", self.namespace, self.name)
                lost()
                return

    async def release(self) -> None:
        """Hand the Lease back, so that a standby need not wait for it to expire."""
        try:
            lease = await self._call(
                self.coordination.read_namespaced_lease, self.name, self.namespace
            )
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            await self._call(
                self.coordination.replace_namespaced_lease, self.name, self.namespace, lease
            )
            log.info("released the Lease %s/%s", self.namespace, self.name)
        except ApiException as exc:
            log.warning("cannot release the Lease: %s", exc.reason)
