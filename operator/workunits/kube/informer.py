"""A light list-and-watch of the Jobs and pods the operator owns.

Each attempt of a unit makes about ten watch events on its Job and pod (the Job
controller, the scheduler and the kubelet each write them). Run through kopf's
per-event machinery they cost the operator most of its CPU; here each one costs a
JSON decode and a comparison. A thread per watch reads the stream, keeps only what
decisions read of each object (``convert``), and hands changes to the event loop,
where the store is updated and ``on_change`` told.

The store follows the API server the way client-go's informers do: a paginated
list, then a watch from the list's resourceVersion with bookmarks; a broken stream
is watched again from the last version seen, and an expired version (410 Gone) or
any other failure is answered with a fresh list, whose differences with the store
are reported as changes. ``synced`` is set once every scope has been listed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException

from workunits.kube.errors import classify

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Convert = Callable[[dict[str, Any]], Any]
Group = Callable[[Key, Any], Hashable | None]
OnChange = Callable[[str, Key, Any, Any], None]  # (type, key, new or None, old or None)
Lister = Callable[..., Any]  # a kubernetes client list call for one scope

LIST_PAGE = 500
WATCH_SECONDS = 300  # the server ends a watch after this; it is then resumed
READ_TIMEOUT = 90  # silence longer than this (no event, no bookmark): the stream is dead
BACKOFF_MAX = 10.0


class Gone(Exception):
    """The version the watch resumes from has expired: list again."""


class Informer:
    def __init__(
        self,
        resource: str,
        listers: list[Lister],
        selector: str,
        convert: Convert,
        on_change: OnChange,
        *,
        fields: str = "",
        group: Group | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> None:
        self.resource = resource
        self.listers = listers  # one per scope: a namespace, or the whole cluster
        self.selector = selector
        self.fields = fields  # a field selector, evaluated by the server too
        self.convert = convert
        self.on_change = on_change
        self.group_of = group
        self.accept = accept  # a namespace filter, for patterns a scope cannot express
        self.store: dict[Key, Any] = {}
        self.groups: dict[Hashable, dict[Key, Any]] = {}
        self.synced = asyncio.Event()
        self.events = 0  # watch events applied
        self.relists = 0
        self._listed: set[int] = set()
        self._scope_keys: dict[int, set[Key]] = {i: set() for i in range(len(listers))}
        self._versions: dict[int, str | None] = {}  # scope -> resourceVersion to resume from
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Changes the watch threads hand to the event loop, in the order they came: one
        # wake-up of the loop takes all that piled up meanwhile.
        self._handed: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._handing = threading.Lock()

    # ---- reading, from the event loop -----------------------------------------------

    def get(self, key: Key) -> Any:
        return self.store.get(key)

    def group(self, value: Hashable) -> dict[Key, Any]:
        return self.groups.get(value, {})

    # ---- running ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for scope, lister in enumerate(self.listers):
            thread = threading.Thread(
                target=self._run,
                args=(scope, lister),
                name=f"watch-{self.resource}-{scope}",
                daemon=True,  # a stream blocked in a read must not hold the exit
            )
            thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self, scope: int, lister: Lister) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                if self._versions.get(scope) is None:
                    self._versions[scope] = self._list(scope, lister)
                    delay = 0.5
                began = time.monotonic()
                self._watch(scope, lister)
                if time.monotonic() - began > 1:
                    delay = 0.5
                else:  # a stream that ends as soon as it starts: do not spin on it
                    self._stopping.wait(delay)
                    delay = min(delay * 2, BACKOFF_MAX)
            except Gone:
                self._versions[scope] = None
            except ApiException as exc:
                # The API server's own sentence: for a 403 it names the verb and scope.
                why = classify(exc, f"list and watch {self.resource}")
                log.warning("%s; listing again in %.0fs", why, delay)
                self._versions[scope] = None
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            except Exception as exc:  # a broken connection, a restarted API server
                log.warning(
                    "watching %s broke (%s); resuming in %.1fs",
                    self.resource,
                    type(exc).__name__,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    def _list(self, scope: int, lister: Lister) -> str:
        entries: dict[Key, Any] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE, **self._selectors()}
            if token:
                kwargs["_continue"] = token
            response = lister(_preload_content=False, _request_timeout=(10, 60), **kwargs)
            page = json.loads(response.data)
            for item in page.get("items") or []:
                meta = item.get("metadata") or {}
                key = (meta.get("namespace", ""), meta.get("name", ""))
                if self.accept is None or self.accept(key[0]):
                    entries[key] = self.convert(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                version: str = (page.get("metadata") or {}).get("resourceVersion", "")
                break
        self._post(self._replace, scope, entries)
        return version

    def _selectors(self) -> dict[str, str]:
        chosen = {"label_selector": self.selector, "field_selector": self.fields}
        return {k: v for k, v in chosen.items() if v}

    def _watch(self, scope: int, lister: Lister) -> None:
        """Follow the stream from the last version seen until the server ends it."""
        response = lister(
            **self._selectors(),
            watch=True,
            resource_version=self._versions[scope],
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, READ_TIMEOUT),
        )
        try:
            for line in _lines(response):
                if self._stopping.is_set():
                    break
                event = json.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                meta = obj.get("metadata") or {}
                self._versions[scope] = meta.get("resourceVersion") or self._versions[scope]
                if kind == "BOOKMARK":
                    continue
                key = (meta.get("namespace", ""), meta.get("name", ""))
                if self.accept is not None and not self.accept(key[0]):
                    continue
                entry = None if kind == "DELETED" else self.convert(obj)
                self._post(self._apply, scope, key, entry)
        finally:
            # A stream left unread must not go back to the pool: close it, then release.
            response.close()
            response.release_conn()

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with self._handing:
            self._handed.append((fn, args))
            if len(self._handed) > 1:
                return  # the loop is already called to take them
        try:
            self._loop.call_soon_threadsafe(self._take)
        except RuntimeError:  # the loop is closed: the operator is stopping
            self._stopping.set()

    def _take(self) -> None:
        with self._handing:
            handed, self._handed = self._handed, []
        for fn, args in handed:
            try:
                fn(*args)
            except Exception:  # one change's fault must not lose the ones after it
                log.exception("applying a change of %s failed", self.resource)

    # ---- applying, on the event loop -----------------------------------------------------

    def _apply(self, scope: int, key: Key, entry: Any) -> None:
        self.events += 1
        if entry is None:
            self._scope_keys[scope].discard(key)
        else:
            self._scope_keys[scope].add(key)
        self._set(key, entry)

    def _replace(self, scope: int, entries: dict[Key, Any]) -> None:
        if scope in self._listed:
            self.relists += 1
        for key in self._scope_keys[scope] - entries.keys():
            self._set(key, None)
        for key, entry in entries.items():
            self._set(key, entry)
        self._scope_keys[scope] = set(entries)
        self._listed.add(scope)
        if len(self._listed) == len(self.listers):
            self.synced.set()

    def _set(self, key: Key, entry: Any) -> None:
        old = self.store.get(key)
        if entry is None:
            if old is None:
                return
            del self.store[key]
            self._ungroup(key, old)
            self._notify("DELETED", key, None, old)
            return
        if old == entry:
            return  # nothing the operator reads has changed
        self.store[key] = entry
        if old is not None:
            self._ungroup(key, old)
        if self.group_of is not None:
            value = self.group_of(key, entry)
            if value is not None:
                self.groups.setdefault(value, {})[key] = entry
        self._notify("ADDED" if old is None else "MODIFIED", key, entry, old)

    def _ungroup(self, key: Key, entry: Any) -> None:
        if self.group_of is None:
            return
        value = self.group_of(key, entry)
        members = self.groups.get(value)
        if members is not None:
            members.pop(key, None)
            if not members:
                del self.groups[value]

    def _notify(self, kind: str, key: Key, new: Any, old: Any) -> None:
        try:
            self.on_change(kind, key, new, old)
        except Exception:  # one object's fault must not stop the watch
            log.exception("handling a change of %s %s/%s failed", self.resource, *key)


def _lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed response, as they arrive."""
    pending = b""
    for chunk in response.stream(None, decode_content=False):
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            line, pending = pending[:end], pending[end + 1 :]
            if line.strip():
                yield line
    if pending.strip():
        yield pending
