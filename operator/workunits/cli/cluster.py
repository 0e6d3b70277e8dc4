"""The CLI's access to the cluster: kubeconfig, the two kinds, and errors people can read.

Every failure the CLI expects ends as a :class:`CliError` with a one-line message and
an exit code: 2 for a usage error or a name that does not exist, 1 for anything else
(no cluster, no permission, a refused request).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from workunits import GROUP, VERSION

REQUEST_TIMEOUT = 15


class CliError(Exception):
    """A failure with a message for people and the exit code it ends with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class NotFound(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short: str

    @property
    def singular(self) -> str:
        return self.kind.lower()


WORKUNIT = Kind("WorkUnit", "workunits", "wu")
WORKJOB = Kind("WorkJob", "workjobs", "wj")
KINDS = (WORKJOB, WORKUNIT)
_ALIASES = {
    alias: kind
    for kind in KINDS
    for alias in (kind.singular, kind.plural, kind.short, f"{kind.plural}.{GROUP}")
}
_ALIASES |= {"unit": WORKUNIT, "units": WORKUNIT}


def kind_of(text: str) -> Kind:
    try:
        return _ALIASES[text.lower()]
    except KeyError:
        raise CliError(
            f"unknown kind {text!r}: use workunit (wu) or workjob (wj)", code=2
        ) from None


def split_ref(ref: str) -> tuple[Kind | None, str]:
    """``wj/name`` or ``workunit/name`` -> (kind, name); a bare ``name`` -> (None, name)."""
    if "/" in ref:
        kind, _, name = ref.partition("/")
        return kind_of(kind), name
    return None, ref


class Cluster:
    """One cluster, as the kubeconfig (or the pod's service account) names it."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        self.namespace = "default"
        try:
            config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            if context:
                contexts, _ = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig
                )
                active = next((c for c in contexts if c["name"] == context), active)
            self.namespace = (active or {}).get("context", {}).get("namespace") or "default"
        except (ConfigException, FileNotFoundError, TypeError) as exc:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except ConfigException:
                raise CliError(f"no cluster configured: {exc}") from None
        configuration = client.Configuration.get_default_copy()
        configuration.retries = False  # an unreachable cluster fails at once, not in a minute
        self.server = configuration.host
        self.api = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the API; turn its failures into one-line :class:`CliError`\\ s."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise _api_error(what, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise CliError(f"cannot reach the cluster at {self.server}: {_root(exc)}") from None

    # -- our objects --

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        return dict(
            self.call(
                f'{kind.singular} "{name}" in namespace "{namespace}"',
                self.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                kind.plural,
                name,
            )
        )

    def items(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            result = self.call(
                kind.plural,
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                kind.plural,
            )
        else:
            result = self.call(
                kind.plural,
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                kind.plural,
            )
        return list(result.get("items") or [])

    def find(self, ref: str, namespace: str, kinds: tuple[Kind, ...] = KINDS) -> dict[str, Any]:
        """The object ``ref`` names: ``kind/name``, or a name looked up in ``kinds``."""
        kind, name = split_ref(ref)
        if kind is not None:
            if kind not in kinds:
                wanted = " or ".join(k.singular for k in kinds)
                raise CliError(f"{ref}: this command takes a {wanted}", code=2)
            return self.get(kind, namespace, name)
        found = []
        for candidate in kinds:
            try:
                found.append(self.get(candidate, namespace, name))
            except NotFound:
                continue
        if not found:
            wanted = " or ".join(k.singular for k in kinds)
            raise NotFound(f'no {wanted} named "{name}" in namespace "{namespace}"')
        if len(found) > 1:
            raise CliError(
                f'both a workjob and a workunit are named "{name}": say wj/{name} or wu/{name}',
                code=2,
            )
        return found[0]

    def patch_spec(self, obj: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj["kind"])
        meta = obj["metadata"]
        return dict(
            self.call(
                f'{kind.singular} "{meta["name"]}"',
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                meta["namespace"],
                kind.plural,
                meta["name"],
                {"spec": spec},
            )
        )

    def events(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        meta = obj["metadata"]
        result = self.call(
            "events",
            self.core.list_namespaced_event,
            meta["namespace"],
            field_selector=f"involvedObject.uid={meta['uid']}",
            _preload_content=False,
        )
        items = json.loads(result.data).get("items") or []
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def _api_error(what: str, exc: ApiException) -> CliError:
    message = exc.reason or ""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    if exc.status == 404:
        if "the server could not find the requested resource" in message:
            return CliError(
                "the workunits.io API is not installed on this cluster (apply the CRDs first)"
            )
        return NotFound(f"{what} not found")
    if exc.status in (401, 403):
        return CliError(f"not allowed: {message}")
    return CliError(f"{what}: {exc.status} {message}")


def _root(exc: BaseException) -> str:
    """The innermost reason of a connection failure, without urllib3's wrapping."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _root(reason)
    text = str(exc)
    return text.split(": ", 1)[-1] if "Failed to establish" in text else text
