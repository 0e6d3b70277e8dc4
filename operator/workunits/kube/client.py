"""The operator's own API calls: Jobs, ConfigMaps, and the units' status.

Calls go through the official client in worker threads, returning plain dicts. Every
write is idempotent: a Job that already exists and is ours is adopted; a delete of
something already gone is fine.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from workunits import GROUP, VERSION, __version__
from workunits.kube.errors import ApiError, PermanentError, classify

log = logging.getLogger(__name__)


def load_configuration() -> client.Configuration:
    """In a pod: its service account; elsewhere: the current kubeconfig context."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.Configuration.get_default_copy()


class JobConflict(PermanentError):
    """A Job with the attempt's name exists and belongs to something else."""


class Kube:
    """A small, async face on the API server for the operator's writes."""

    def __init__(self, api: client.ApiClient, threads: int = 16) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self.writes: Counter[tuple[str, str]] = Counter()  # (verb, resource) -> count
        self.errors: Counter[tuple[str, str]] = Counter()

    @classmethod
    def from_environment(cls, threads: int = 16) -> Kube:
        """In a pod: its service account; elsewhere: the current kubeconfig context."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = threads * 2
        api = client.ApiClient(configuration)
        # A user agent of our own: the audit log tells the operator's writes apart.
        api.user_agent = f"workunits-operator/{__version__}"
        return cls(api, threads)

    async def _call(
        self, verb: str, resource: str, what: str, fn: Any, *args: Any, **kwargs: Any
    ) -> Any:
        loop = asyncio.get_running_loop()
        kwargs["_preload_content"] = False
        if verb != "get":
            self.writes[(verb, resource)] += 1
        try:
            response = await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))
        except ApiException as exc:
            self.errors[(verb, resource)] += 1
            raise classify(exc, what) from exc
        data = response.data
        return json.loads(data) if data else {}

    # -- Jobs --

    async def create_job(self, manifest: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """Create the Job, or adopt it when it exists and the unit owns it."""
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            created: dict[str, Any] = await self._call(
                "create",
                "jobs",
                f"create Job {namespace}/{name}",
                self.batch.create_namespaced_job,
                namespace,
                manifest,
            )
            return created
        except ApiError as exc:  # AlreadyExists: look at what is there
            if exc.status != 409:
                raise
        existing: dict[str, Any] = await self._call(
            "get",
            "jobs",
            f"read Job {namespace}/{name}",
            self.batch.read_namespaced_job,
            name,
            namespace,
        )
        owners = (existing.get("metadata") or {}).get("ownerReferences") or []
        if any(o.get("uid") == owner_uid for o in owners):
            log.info("adopted Job %s/%s, created before the operator restarted", namespace, name)
            return existing
        raise JobConflict(
            f"Job {namespace}/{name} already exists and is not owned by this unit", 409
        )

    async def delete_job(self, namespace: str, name: str) -> None:
        body = client.V1DeleteOptions(propagation_policy="Background")
        try:
            await self._call(
                "delete",
                "jobs",
                f"delete Job {namespace}/{name}",
                self.batch.delete_namespaced_job,
                name,
                namespace,
                body=body,
            )
        except PermanentError as exc:
            if exc.status != 404:
                raise

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods ``selector`` picks, as the API server's cache has them."""
        result: dict[str, Any] = await self._call(
            "get",
            "pods",
            f"list pods {selector} in {namespace}",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=selector,
            resource_version="0",
        )
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    # -- WorkUnits and WorkJobs --

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "patch",
            f"{plural}/status",
            f"patch {plural}/status {namespace}/{name}",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
        )
        return result

    async def patch_object(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "patch",
            plural,
            f"patch {plural} {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
        )
        return result

    async def read_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "get",
            plural,
            f"read {plural} {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
        )
        return result

    async def create_object(
        self, plural: str, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "create",
            plural,
            f"create {plural} {namespace}/{body['metadata']['name']}",
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            body,
        )
        return result

    async def delete_object(self, plural: str, namespace: str, name: str, uid: str) -> None:
        body = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid), propagation_policy="Background"
        )
        try:
            await self._call(
                "delete",
                plural,
                f"delete {plural} {namespace}/{name}",
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body=body,
            )
        except PermanentError as exc:
            if exc.status not in (404, 409):
                raise

    # -- Events --

    async def post_event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """A Kubernetes Event about ``obj``. Failing to post one is logged, never raised."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace", "default")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name', 'unit')[:200]}.",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "workunits"},
            "reportingComponent": "workunits.io/operator",
            "reportingInstance": "workunits",
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "count": 1,
        }
        try:
            await self._call(
                "create",
                "events",
                f"post Event on {namespace}/{meta.get('name')}",
                self.core.create_namespaced_event,
                namespace,
                body,
            )
        except ApiError as exc:
            log.debug("event not posted: %s", exc)

    # -- ConfigMaps --

    async def put_config_map(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        owner: dict[str, Any],
        labels: dict[str, str],
    ) -> None:
        """Create or replace a ConfigMap owned by ``owner``."""
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [owner],
            },
            "data": data,
        }
        try:
            await self._call(
                "create",
                "configmaps",
                f"create ConfigMap {namespace}/{name}",
                self.core.create_namespaced_config_map,
                namespace,
                body,
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            await self._call(
                "update",
                "configmaps",
                f"replace ConfigMap {namespace}/{name}",
                self.core.replace_namespaced_config_map,
                name,
                namespace,
                body,
            )

    async def merge_config_map(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        owner: dict[str, Any],
        labels: dict[str, str],
    ) -> None:
        """Merge ``data`` into a ConfigMap owned by ``owner``, creating it when missing."""
        try:
            await self._call(
                "patch",
                "configmaps",
                f"patch ConfigMap {namespace}/{name}",
                self.core.patch_namespaced_config_map,
                name,
                namespace,
                {"data": data},
            )
            return
        except ApiError as exc:
            if exc.status != 404:
                raise
        await self.put_config_map(namespace, name, data, owner, labels)

    async def read_config_map(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "get",
            "configmaps",
            f"read ConfigMap {namespace}/{name}",
            self.core.read_namespaced_config_map,
            name,
            namespace,
        )
        return result
