"""The operator's own API calls: Jobs, ConfigMaps, and the units' status.

Requests go through the official client's authentication and connection pool in worker
threads, with plain dicts as bodies and answers. Every write is idempotent: a Job that
already exists and is ours is adopted; a delete of something already gone is fine.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from workunits import GROUP, VERSION, __version__
from workunits.kube.errors import ApiError, PermanentError, classify

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


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

    async def _request(
        self,
        verb: str,
        resource: str,
        what: str,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request to the API server, its answer as a dict.

        The generated client's methods validate every argument into its models and
        serialise them back, which cost more than the request itself; the operator's
        bodies are plain dicts that are already right, so they go straight through the
        client's authentication and connection pool.
        """
        api = self.api
        url = api.configuration.host + path
        if query:
            url += "?" + urlencode(query)

        def send() -> bytes:
            headers = dict(api.default_headers)
            headers["Accept"] = "application/json"
            if body is not None:
                headers["Content-Type"] = content_type
            api.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
            rest = api.rest_client
            response = rest.request(method, url, headers=headers, body=body)  # type: ignore[no-untyped-call]
            data: bytes = response.read()
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return data

        if verb != "get":
            self.writes[(verb, resource)] += 1
        try:
            data = await asyncio.get_running_loop().run_in_executor(self.pool, send)
        except ApiException as exc:
            self.errors[(verb, resource)] += 1
            raise classify(exc, what) from exc
        return json.loads(data) if data else {}

    # -- Jobs --

    async def create_job(self, manifest: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """Create the Job, or adopt it when it exists and the unit owns it."""
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        try:
            created: dict[str, Any] = await self._request(
                "create", "jobs", f"create Job {namespace}/{name}", "POST", jobs, manifest
            )
            return created
        except ApiError as exc:  # AlreadyExists: look at what is there
            if exc.status != 409:
                raise
        existing: dict[str, Any] = await self._request(
            "get", "jobs", f"read Job {namespace}/{name}", "GET", f"{jobs}/{quote(name)}"
        )
        owners = (existing.get("metadata") or {}).get("ownerReferences") or []
        if any(o.get("uid") == owner_uid for o in owners):
            log.info("adopted Job %s/%s, created before the operator restarted", namespace, name)
            return existing
        raise JobConflict(
            f"Job {namespace}/{name} already exists and is not owned by this unit", 409
        )

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await self._request(
                "delete",
                "jobs",
                f"delete Job {namespace}/{name}",
                "DELETE",
                f"/apis/batch/v1/namespaces/{namespace}/jobs/{quote(name)}",
                {"propagationPolicy": "Background"},
            )
        except PermanentError as exc:
            if exc.status != 404:
                raise

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods ``selector`` picks, as the API server's cache has them."""
        result: dict[str, Any] = await self._request(
            "get",
            "pods",
            f"list pods {selector} in {namespace}",
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": selector, "resourceVersion": "0"},
        )
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    # -- WorkUnits and WorkJobs --

    @staticmethod
    def _custom(plural: str, namespace: str, name: str = "") -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"
        return f"{path}/{quote(name)}" if name else path

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "patch",
            f"{plural}/status",
            f"patch {plural}/status {namespace}/{name}",
            "PATCH",
            self._custom(plural, namespace, name) + "/status",
            {"status": status},
            content_type=MERGE_PATCH,
        )
        return result

    async def patch_object(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "patch",
            plural,
            f"patch {plural} {namespace}/{name}",
            "PATCH",
            self._custom(plural, namespace, name),
            patch,
            content_type=MERGE_PATCH,
        )
        return result

    async def read_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "get",
            plural,
            f"read {plural} {namespace}/{name}",
            "GET",
            self._custom(plural, namespace, name),
        )
        return result

    async def create_object(
        self, plural: str, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "create",
            plural,
            f"create {plural} {namespace}/{body['metadata']['name']}",
            "POST",
            self._custom(plural, namespace),
            body,
        )
        return result

    async def delete_object(self, plural: str, namespace: str, name: str, uid: str) -> None:
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        try:
            await self._request(
                "delete",
                plural,
                f"delete {plural} {namespace}/{name}",
                "DELETE",
                self._custom(plural, namespace, name),
                body,
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
            await self._request(
                "create",
                "events",
                f"post Event on {namespace}/{meta.get('name')}",
                "POST",
                f"/api/v1/namespaces/{namespace}/events",
                body,
            )
        except ApiError as exc:
            log.debug("event not posted: %s", exc)

    # -- ConfigMaps --

    @staticmethod
    def _config_map_body(
        namespace: str,
        name: str,
        data: dict[str, str],
        owner: dict[str, Any],
        labels: dict[str, str],
    ) -> dict[str, Any]:
        return {
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

    async def _config_map_call(
        self, verb: str, method: str, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, str]:
        """One write of a ConfigMap; its data as the server then holds it."""
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        if method != "POST":
            path += f"/{quote(name)}"
        answer = await self._request(
            verb,
            "configmaps",
            f"{verb} ConfigMap {namespace}/{name}",
            method,
            path,
            body,
            content_type=MERGE_PATCH if method == "PATCH" else "application/json",
        )
        data: dict[str, str] = answer.get("data") or {}
        return data

    async def put_config_map(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        owner: dict[str, Any],
        labels: dict[str, str],
    ) -> dict[str, str]:
        """Create or replace a ConfigMap owned by ``owner``; its data as stored."""
        body = self._config_map_body(namespace, name, data, owner, labels)
        try:
            return await self._config_map_call("create", "POST", namespace, name, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        return await self._config_map_call("update", "PUT", namespace, name, body)

    async def merge_config_map(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        owner: dict[str, Any],
        labels: dict[str, str],
    ) -> dict[str, str]:
        """Merge ``data`` into a ConfigMap owned by ``owner``, creating it when missing.
        Returns all its data as stored, the keys others wrote included."""
        patch = {"data": data}
        try:
            return await self._config_map_call("patch", "PATCH", namespace, name, patch)
        except ApiError as exc:
            if exc.status != 404:
                raise
        body = self._config_map_body(namespace, name, data, owner, labels)
        try:
            return await self._config_map_call("create", "POST", namespace, name, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        # Created meanwhile: merge into it, never replace it.
        return await self._config_map_call("patch", "PATCH", namespace, name, patch)

    async def read_config_map(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "get",
            "configmaps",
            f"read ConfigMap {namespace}/{name}",
            "GET",
            f"/api/v1/namespaces/{namespace}/configmaps/{quote(name)}",
        )
        return result
