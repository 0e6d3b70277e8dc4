"""The CLI's verbs that act or follow: watch, logs, rerun, cancel, suspend, resume, submit."""

from __future__ import annotations

import contextlib
import pathlib
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml
from kubernetes import utils
from rich.console import Console
from rich.live import Live

from workunits import GROUP, VERSION
from workunits.cli.cluster import (
    KINDS,
    WORKJOB,
    WORKUNIT,
    CliError,
    Cluster,
    NotFound,
    kind_of,
)
from workunits.cli.progress import (
    Rate,
    Snapshot,
    format_counts,
    progress_line,
    snapshot,
    summary,
    view,
)
from workunits.core import names

# -- watch --------------------------------------------------------------------------------


def _elapsed(obj: dict[str, Any]) -> float:
    """From the object's creation to its completion, or to now while it runs."""
    created = obj["metadata"].get("creationTimestamp")
    ended = (obj.get("status") or {}).get("completionTime")
    try:
        start = datetime.fromisoformat(created.replace("Z", "+00:00"))
        end = datetime.fromisoformat(ended.replace("Z", "+00:00")) if ended else datetime.now(UTC)
    except (AttributeError, ValueError):
        return 0.0
    return max((end - start).total_seconds(), 0.0)


def follow(
    cluster: Cluster,
    obj: dict[str, Any],
    console: Console,
    interval: float = 1.0,
    timeout: float | None = None,
) -> int:
    """Draw the object's progress until it finishes; 0 when it succeeded, else 1."""
    kind = kind_of(obj["kind"])
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    rate = Rate()
    started = time.monotonic()
    snap: Snapshot = snapshot(obj)
    live = console.is_terminal
    last = ""
    display = Live(console=console, auto_refresh=False) if live else contextlib.nullcontext()
    with display:
        while True:
            snap = snapshot(obj)
            rate.add(time.monotonic(), snap.done)
            if isinstance(display, Live):
                display.update(view(snap, rate, _elapsed(obj)), refresh=True)
            else:  # a pipe or a file: one line per change, no redrawing
                line = f"{snap.phase}  {progress_line(snap, rate)}  {format_counts(snap.counts)}"
                if line != last:
                    console.print(line, highlight=False, soft_wrap=True)
                    last = line
            if snap.finished:
                break
            if timeout is not None and time.monotonic() - started > timeout:
                raise CliError(f"{kind.singular}/{name} still {snap.phase} after {timeout:g}s")
            time.sleep(interval)
            try:
                obj = cluster.get(kind, namespace, name)
            except NotFound:
                raise CliError(f"{kind.singular}/{name} was deleted while watched") from None
    console.print(summary(snap, _elapsed(obj)), highlight=False, soft_wrap=True)
    return 0 if snap.phase == "Succeeded" else 1


def follow_all(
    cluster: Cluster,
    objects: Sequence[dict[str, Any]],
    console: Console,
    interval: float = 1.0,
    timeout: float | None = None,
) -> int:
    """Follow every object until all have ended, printing each one's end as it comes;
    0 when every one succeeded, else 1, as :func:`follow` for one."""
    if len(objects) == 1:
        return follow(cluster, objects[0], console, interval, timeout)
    started = time.monotonic()
    waiting = list(objects)
    ended: dict[str, int] = {}
    console.print(f"watching {len(objects)} objects until all have ended", highlight=False)
    while True:
        still = []
        for obj in waiting:
            snap = snapshot(obj)
            if snap.finished:
                console.print(summary(snap, _elapsed(obj)), highlight=False, soft_wrap=True)
                ended[snap.phase] = ended.get(snap.phase, 0) + 1
            else:
                still.append(obj)
        waiting = still
        if not waiting:
            break
        if timeout is not None and time.monotonic() - started > timeout:
            left = ", ".join(_label(o) for o in waiting[:5])
            more = f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
            raise CliError(f"{left}{more} not ended after {timeout:g}s")
        time.sleep(interval)
        waiting = []
        for obj in still:
            kind = kind_of(obj["kind"])
            try:
                waiting.append(
                    cluster.get(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
                )
            except NotFound:
                console.print(f"{_label(obj)} was deleted while watched", highlight=False)
                ended["deleted"] = ended.get("deleted", 0) + 1
    order = ("Succeeded", "Failed", "Cancelled", "deleted")
    tally = ", ".join(f"{ended[p]} {p.lower()}" for p in order if ended.get(p))
    console.print(f"{len(objects)} objects: {tally}", highlight=False)
    return 0 if set(ended) == {"Succeeded"} else 1


def _label(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def watch(
    cluster: Cluster,
    ref: str,
    namespace: str,
    console: Console,
    interval: float,
    timeout: float | None,
) -> int:
    return follow(cluster, cluster.find(ref, namespace, KINDS), console, interval, timeout)


# -- logs ---------------------------------------------------------------------------------


def attempt_job(unit: dict[str, Any], attempt: int | None) -> tuple[int, str]:
    """The attempt asked for (default: the latest) and the name of its Job."""
    status = unit.get("status") or {}
    attempts = int(status.get("attempts") or 0)
    name = unit["metadata"]["name"]
    if attempts == 0:
        raise CliError(f"workunit/{name} has not started an attempt yet")
    number = attempts if attempt is None else attempt
    if not 1 <= number <= attempts:
        raise NotFound(f"workunit/{name} has attempts 1 to {attempts}, not {number}")
    for entry in status.get("history") or []:
        if entry.get("attempt") == number and entry.get("jobName"):
            return number, str(entry["jobName"])
    return number, names.job_name(name, unit["metadata"]["uid"], number)


def logs(
    cluster: Cluster,
    ref: str,
    namespace: str,
    attempt: int | None,
    container: str | None,
    stream: bool,
    out: TextIO,
) -> int:
    unit = cluster.find(ref, namespace, (WORKUNIT,))
    number, job = attempt_job(unit, attempt)
    pods: list[Any] = cluster.call(
        f"pods of Job {job}",
        cluster.core.list_namespaced_pod,
        namespace,
        label_selector=f"batch.kubernetes.io/job-name={job}",
    ).items
    if not pods:
        raise CliError(
            f"attempt {number} of workunit/{unit['metadata']['name']}: no pod of Job {job} "
            "is left (deleted with its Job, or by the pod garbage collector)"
        )
    pods.sort(key=lambda p: p.metadata.creation_timestamp)
    for pod in pods:
        if len(pods) > 1:
            out.write(f"==> pod {pod.metadata.name} <==\n")
        name = container or pod.spec.containers[0].name
        for chunk in _pod_log(cluster, namespace, pod.metadata.name, name, stream):
            out.write(chunk)
        out.flush()
    return 0


def _pod_log(
    cluster: Cluster, namespace: str, pod: str, container: str, stream: bool
) -> Iterator[str]:
    response = cluster.call(
        f"log of pod {pod}",
        cluster.core.read_namespaced_pod_log,
        pod,
        namespace,
        container=container,
        follow=stream,
        _preload_content=False,
        _request_timeout=None if stream else 30,
    )
    try:
        for chunk in response.stream(4096):
            yield chunk.decode(errors="replace")
    finally:
        response.release_conn()


# -- changes to the spec -----------------------------------------------------------------


def set_spec(cluster: Cluster, refs: Sequence[str], namespace: str, verb: str, out: TextIO) -> int:
    """cancel, suspend or resume each object: one merge patch of its spec."""
    patch = {"cancel": {"cancel": True}, "suspend": {"suspend": True}}.get(verb, {"suspend": False})
    for ref in refs:
        obj = cluster.find(ref, namespace, KINDS)
        label = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        if verb == "resume" and spec.get("cancel"):
            raise CliError(f"{label} is cancelled; a cancelled object cannot resume")
        if phase in ("Succeeded", "Failed", "Cancelled") and verb != "resume":
            out.write(f"{label} already {phase}: nothing to {verb}\n")
            continue
        cluster.patch_spec(obj, patch)
        done = {"cancel": "cancelled", "suspend": "suspended", "resume": "resumed"}[verb]
        out.write(f"{label} {done}\n")
    return 0


def rerun(cluster: Cluster, ref: str, namespace: str, out: TextIO) -> int:
    """Bump a WorkJob's spec.rerun: its failed and cancelled units run again, and those
    never created because it ended first run for the first time. A cancelled WorkJob is
    un-cancelled in the same patch: the operator holds a re-run while spec.cancel is true."""
    obj = cluster.find(ref, namespace, (WORKJOB,))
    name = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    counts = status.get("counts") or {}
    if status.get("phase") == "Succeeded" and not counts.get("failed"):
        out.write(f"workjob/{name} succeeded with no failed unit: nothing to re-run\n")
        return 0
    number = int(spec.get("rerun") or 0) + 1
    change: dict[str, Any] = {"rerun": number}
    if spec.get("cancel"):
        change["cancel"] = False
    # The resourceVersion makes two people's re-runs at once one re-run, not two.
    cluster.call(
        f"workjob/{name}",
        cluster.custom.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        WORKJOB.plural,
        name,
        {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "spec": change,
        },
    )
    again = sum(int(counts.get(k) or 0) for k in ("failed", "cancelled", "notRun"))
    what = "failed, cancelled or never-run units to run"
    cleared = " (spec.cancel cleared)" if "cancel" in change else ""
    out.write(f"workjob/{name} re-run {number}{cleared}: {again} {what}\n")
    return 0


# -- submit -------------------------------------------------------------------------------


def read_manifests(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", code=2) from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}", code=2) from None
    objects: list[dict[str, Any]] = []
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            raise CliError(f"{path}: every document must be a Kubernetes object", code=2)
        if document["kind"] == "List":
            objects += document.get("items") or []
        else:
            objects.append(document)
    if not objects:
        raise CliError(f"{path} holds no object", code=2)
    return objects


def submit(
    cluster: Cluster,
    path: str,
    namespace: str,
    then_watch: bool,
    console: Console,
    interval: float,
    timeout: float | None,
) -> int:
    ours: list[dict[str, Any]] = []
    for obj in read_manifests(path):
        target = (obj.get("metadata") or {}).get("namespace") or namespace
        group = str(obj.get("apiVersion", "")).split("/")[0]
        if group == GROUP:
            kind = kind_of(obj["kind"])
            created = cluster.call(
                f"create {kind.singular}",
                cluster.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                target,
                kind.plural,
                obj,
            )
            ours.append(dict(created))
            console.print(f"{kind.singular}/{created['metadata']['name']} created", highlight=False)
        else:
            try:
                utils.create_from_dict(cluster.api, obj, namespace=target)  # type: ignore[no-untyped-call]
            except utils.FailToCreateError as exc:
                first = exc.api_exceptions[0]
                raise CliError(f"{obj['kind']}: {first.status} {first.reason}") from None
            name = (obj.get("metadata") or {}).get("name", "")
            console.print(f"{obj['kind'].lower()}/{name} created", highlight=False)
    if not then_watch:
        return 0
    if not ours:
        raise CliError(f"{path} holds no WorkJob or WorkUnit to watch", code=2)
    return follow_all(cluster, ours, console, interval, timeout)


__all__ = ["KINDS", "follow", "follow_all", "logs", "rerun", "set_spec", "submit", "watch"]
