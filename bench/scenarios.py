"""The five benchmarks. Each takes a namespace of its own and sizes as parameters, runs
its own operator on that namespace, and returns a plain dict of figures (JSON).

Nothing here asserts: the figures are reported, and the callers (``python -m bench``
and the CI smoke test) decide what they expect.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.harness import (
    Cluster,
    Operator,
    Tracker,
    agent_of,
    job_done,
    unit_phase,
    wait_for,
)
from workunits import GROUP, VERSION
from workunits.core import names

UNIT_UID = names.LABEL_UNIT_UID
ATTEMPT = names.LABEL_ATTEMPT
FINISHED = ("Succeeded", "Failed", "Cancelled")


@dataclass
class Env:
    """Where a benchmark runs: the cluster, its namespace, and how to start an operator."""

    cluster: Cluster
    namespace: str
    operator_args: tuple[str, ...] = ()
    profile: str | None = None  # a py-spy output file (the operator runs under py-spy)

    def operator(self, events: bool = False, name: str = "operator") -> Operator:
        return Operator(
            self.cluster.kubeconfig,
            self.namespace,
            events=events,
            args=self.operator_args,
            profile=self.profile,
            name=name,
        )


# ---- bodies -------------------------------------------------------------------------


def workunit(
    name: str,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A WorkUnit running busybox, its pod scripted by the local control plane's Stages."""
    body: dict[str, Any] = {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkUnit",
        "metadata": {"name": name},
        "spec": {**(spec or {}), **_pod(labels, annotations)},
    }
    return body


def _pod(labels: dict[str, str] | None, annotations: dict[str, str] | None) -> dict[str, Any]:
    if not labels and not annotations:
        return {"image": "busybox"}
    return {
        "template": {
            "metadata": {"labels": labels or {}, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "work", "image": "busybox"}]},
        }
    }


def bare_job(name: str) -> dict[str, Any]:
    """A Job with the pod a unit gets, shaped as the operator shapes it (one attempt)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"bench.workunits.io/bare": "true"}},
        "spec": {
            "backoffLimit": 0,
            "podFailurePolicy": {
                "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
            },
            "podReplacementPolicy": "Failed",
            "template": {
                "metadata": {"labels": {"bench.workunits.io/bare": "true"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "work",
                            "image": "busybox",
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                        }
                    ],
                },
            },
        },
    }


def workjob(name: str, units: int, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkJob",
        "metadata": {"name": name},
        "spec": {
            "parallelism": parallelism,
            "tasks": [
                {
                    "name": "work",
                    "generator": {"range": {"end": units}},
                    "template": {"spec": {"image": "busybox"}},
                }
            ],
        },
    }


# ---- 1. overhead: N units against N bare Jobs ---------------------------------------


def overhead(
    env: Env, n: int = 1000, jobs_first: bool = True, timeout: float = 600
) -> dict[str, Any]:
    """Time for N units to all succeed, against N bare Jobs with the same pod.

    Both sides are created by the same client and the same threads, one after the other
    in the same namespace, with the operator running throughout (bare Jobs carry no
    label of ours, so it ignores them). Callers alternate ``jobs_first`` over repeats.
    The CPU seconds each side cost every process (the control plane's, the operator's,
    this client's) say where the difference goes.
    """
    cluster, ns = env.cluster, env.namespace
    figures: dict[str, Any] = {"n": n, "jobs_first": jobs_first, "cpu_seconds": {}}
    # The floor's units, in a namespace the operator does not serve (see _time_floor).
    floor = cluster.new_namespace("wu-bench-floor")
    with env.operator(name="overhead") as operator, _deleted(cluster, floor):
        before = operator.usage()
        order = ("jobs", "floor", "units") if jobs_first else ("units", "floor", "jobs")
        for side in order:
            start = _cpu(cluster, operator)
            if side == "floor":
                figures["floor_seconds"] = _time_floor(cluster, floor, n, timeout)
            elif side == "jobs":
                figures["jobs_seconds"] = _time_all(
                    cluster,
                    ns,
                    "jobs",
                    [bare_job(f"bare-{i}") for i in range(n)],
                    job_done,
                    "bench.workunits.io/bare=true",
                    timeout,
                )
            else:
                figures["units_seconds"] = _time_all(
                    cluster,
                    ns,
                    "workunits",
                    [workunit(f"unit-{i}") for i in range(n)],
                    unit_phase,
                    "",
                    timeout,
                )
            end = _cpu(cluster, operator)
            figures["cpu_seconds"][side] = {
                k: round(end[k] - start[k], 2) for k in end if k in start
            }
        after = operator.usage()
    figures["ratio"] = figures["units_seconds"] / figures["jobs_seconds"]
    figures["floor_ratio"] = figures["floor_seconds"] / figures["jobs_seconds"]
    figures["operator_cpu_seconds"] = round(after.cpu_seconds - before.cpu_seconds, 2)
    figures["operator_peak_rss_mb"] = round(after.peak_rss_mb, 1)
    return figures


def _cpu(cluster: Cluster, operator: Operator) -> dict[str, float]:
    return {
        **cluster.cpu_seconds(),
        "operator": operator.usage().cpu_seconds,
        "benchmark client": time.process_time(),
    }


def _time_all(
    cluster: Cluster,
    ns: str,
    plural: str,
    bodies: list[dict[str, Any]],
    summary: Callable[[dict[str, Any]], Any],
    selector: str,
    timeout: float,
) -> float:
    """Seconds from the first create to the moment the watch shows the last one done."""
    n = len(bodies)
    done = ("Complete", "Succeeded")
    with Tracker(cluster, plural, ns, summary, selector) as tracker:
        start = time.monotonic()
        cluster.create_many(bodies, ns)
        end = tracker.wait(
            f"{n} {plural} to succeed",
            lambda t: sum(1 for s in t.objects.values() if s in done) >= n,
            timeout,
        )
    return round(end - start, 3)


@contextmanager
def _deleted(cluster: Cluster, namespace: str) -> Iterator[None]:
    """Delete the namespace at the end, and wait until it has gone."""
    try:
        yield
    finally:
        cluster.delete_namespace(namespace)
        cluster.await_namespace_gone(namespace)


def _time_floor(cluster: Cluster, ns: str, n: int, timeout: float) -> float:
    """The least any operator built on a custom resource can cost: no operator at all.

    In a namespace of its own (the operator does not serve it), the client does what a
    perfect operator would do and nothing more: per unit it creates the WorkUnit, then
    its Job (a bare Job, owned by the unit), and once the Job is complete it writes
    ``Succeeded`` into the unit's status in one patch. Timed like the units: from the
    first create to the watch showing the last unit ``Succeeded``.
    """
    with (
        Tracker(cluster, "workunits", ns, unit_phase) as units,
        Tracker(cluster, "jobs", ns, job_done, "bench.workunits.io/bare=true") as jobs,
        ThreadPoolExecutor(16, thread_name_prefix="floor") as pool,
    ):
        start = time.monotonic()
        deadline = start + timeout
        # Marked as Jobs complete, while the creates go on, as an operator would.
        marker = threading.Thread(
            target=_floor_mark, args=(cluster, ns, n, jobs, deadline), daemon=True
        )
        marker.start()
        for future in [pool.submit(_floor_unit, cluster, ns, i) for i in range(n)]:
            future.result()
        end = units.wait(
            f"{n} units to be marked Succeeded",
            lambda t: sum(1 for s in t.objects.values() if s == "Succeeded") >= n,
            max(deadline - time.monotonic(), 0),
        )
        marker.join(timeout=5)
    return round(end - start, 3)


def _floor_unit(cluster: Cluster, ns: str, i: int) -> None:
    response = cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, "workunits", workunit(f"floor-{i}"), _preload_content=False
    )
    _owned_job(cluster, ns, json.loads(response.data))


def _owned_job(cluster: Cluster, ns: str, unit: dict[str, Any]) -> None:
    """The unit's Job as a controller with nothing to decide would make it: a bare Job
    named after the unit, owned by it."""
    name, uid = unit["metadata"]["name"], unit["metadata"]["uid"]
    job = bare_job(name)
    job["metadata"]["ownerReferences"] = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WorkUnit",
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    cluster.create(job, ns)


def _floor_mark(cluster: Cluster, ns: str, n: int, jobs: Tracker, deadline: float) -> None:
    """Write ``Succeeded`` into each unit whose Job the watch shows complete."""
    marked: set[str] = set()
    with ThreadPoolExecutor(16, thread_name_prefix="mark") as pool:
        while len(marked) < n and time.monotonic() < deadline:
            jobs.wait("a Job to complete", _unmarked(marked), max(deadline - time.monotonic(), 0))
            done = jobs.names(lambda s: s == "Complete") - marked
            marked |= done
            for future in [pool.submit(_floor_succeed, cluster, ns, k) for k in done]:
                future.result()


def _unmarked(marked: set[str]) -> Callable[[Tracker], bool]:
    return lambda t: any(s == "Complete" and k not in marked for k, s in t.objects.items())


def _floor_succeed(cluster: Cluster, ns: str, name: str) -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        ns,
        "workunits",
        name,
        {"status": {"phase": "Succeeded"}},
        _preload_content=False,
    )


# ---- 2. API writes per unit ---------------------------------------------------------


def writes(env: Env, n: int = 20, timeout: float = 300) -> dict[str, Any]:
    """The operator's writes over whole unit lives, from the API server's audit log.

    Four runs in the one namespace: a unit that succeeds at once and one that fails
    twice and succeeds on its third attempt (backoff 0-1 s), each with the operator's
    Events off and on. Each run is cut out of the audit log by offsets taken when the
    operator has been quiet for a while.
    """
    cluster, ns = env.cluster, env.namespace
    audit = cluster.audit
    if not audit.available:
        return {"n": n, "error": f"no audit log at {audit.path}"}
    retry = {"retry": {"maxAttempts": 3, "backoff": {"initialDelaySeconds": 0.5, "factor": 2}}}
    cases: dict[str, tuple[dict[str, str] | None, dict[str, Any]]] = {
        "at_once": (None, {}),
        "retried_twice": ({"sim.workunits.io/succeed-on-attempt": "3"}, retry),
    }
    figures: dict[str, Any] = {"n": n}
    for events in (False, True):
        with env.operator(events=events, name="writes") as _operator:
            start = audit.settle(ns)
            for case, (labels, spec) in cases.items():
                prefix = f"{case.replace('_', '-')}-{'ev' if events else 'noev'}"
                bodies = [workunit(f"{prefix}-{i}", labels=labels, spec=spec) for i in range(n)]
                with Tracker(cluster, "workunits", ns, unit_phase) as tracker:
                    cluster.create_many(bodies, ns)
                    tracker.wait(
                        f"{n} {case} units to finish",
                        lambda t, p=prefix: _finished(t, p) >= n,
                        timeout,
                    )
                end = audit.settle(ns)
                counts = audit.writes(start, end, namespace=ns)
                start = end
                key = f"{case}_{'events' if events else 'no_events'}"
                figures[key] = _per_unit(counts, n)
    return figures


def _finished(tracker: Tracker, prefix: str) -> int:
    return sum(
        1 for k, s in tracker.objects.items() if k.startswith(prefix + "-") and s in FINISHED
    )


def _per_unit(counts: Counter[tuple[str, str, str]], n: int) -> dict[str, Any]:
    """Writes per unit: the operator's by verb and resource, and everyone's by client."""
    ours = {
        f"{verb} {res}": c / n for (agent, verb, res), c in counts.items() if agent == "operator"
    }
    by_agent: Counter[str] = Counter()
    for (agent, _, _), c in counts.items():
        by_agent[agent] += c
    return {
        "operator_per_unit": round(sum(ours.values()), 2),
        "operator_by_kind": {k: round(v, 2) for k, v in sorted(ours.items())},
        "all_clients_per_unit": {k: round(v / n, 2) for k, v in sorted(by_agent.items())},
    }


# ---- 3. fan-out: one WorkJob of many units ------------------------------------------


def fanout(
    env: Env,
    n: int = 10000,
    parallelism: int = 500,
    timeout: float = 1800,
    stall: float = 60,
) -> dict[str, Any]:
    """A WorkJob of N units at the given parallelism: wall time, units/s, the operator's
    peak RSS and CPU time, and the size of the WorkJob's status.

    ``stall``: with no progress in the WorkJob's status for that long, the run ends
    and says so (``measured: false``) instead of waiting for the timeout.
    """
    cluster, ns = env.cluster, env.namespace
    figures: dict[str, Any] = {"n": n, "parallelism": parallelism, "measured": False}
    with env.operator(name="fanout") as operator:
        before = operator.usage()
        start = time.monotonic()
        cluster.create(workjob("fan", n, parallelism), ns)
        last_progress, last_counts, peak_units = start, None, 0
        status: dict[str, Any] = {}
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            status = cluster.get("workjobs", ns, "fan").get("status") or {}
            counts = status.get("counts")
            if counts != last_counts:
                last_counts, last_progress = counts, now
            if status.get("phase") in FINISHED:
                figures["measured"] = status.get("phase") == "Succeeded"
                break
            if now - last_progress > stall or now - start > timeout:
                why = f"no progress for {stall:.0f}s" if now - start <= timeout else "timed out"
                figures["error"] = f"{why} after {now - start:.0f}s (counts {counts})"
                break
        end = time.monotonic()
        after = operator.usage()
        peak_units = len(cluster.list("workunits", ns))
    wall = end - start
    counts = status.get("counts") or {}
    figures.update(
        {
            "phase": status.get("phase"),
            "wall_seconds": round(wall, 2),
            "succeeded": counts.get("succeeded", 0),
            "units_per_second": round(counts.get("succeeded", 0) / wall, 1),
            "operator_peak_rss_mb": round(after.peak_rss_mb, 1),
            "operator_cpu_seconds": round(after.cpu_seconds - before.cpu_seconds, 2),
            "status_bytes": len(_compact(status)),
            "workunits_left": peak_units,
        }
    )
    return figures


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ---- 4. latency: create of a unit to its Job existing -------------------------------


SENDERS = 64  # client threads: enough that a slow create does not delay the next ones


def latency(
    env: Env, rate: float = 50, seconds: float = 30, timeout: float = 300
) -> dict[str, Any]:
    """Objects created at a steady rate (open loop), on two sides in one run: units,
    timed from the moment each create was due to the Job watch showing its Job; and,
    for comparison, bare Jobs timed the same way to their first pod (the Job
    controller's own admission). p50, p99 and max in seconds, and how late the client
    sent creates (it shares the machine). The Jobs go first and are left to finish
    before the units start, so neither side runs in the other's backlog."""
    cluster, ns = env.cluster, env.namespace
    n = max(1, int(rate * seconds))
    figures: dict[str, Any] = {"n": n, "rate": rate, "seconds": seconds}
    with env.operator(name="latency") as operator:
        with (
            Tracker(cluster, "pods", ns, _owner("Job"), "bench.workunits.io/bare=true") as pods,
            Tracker(cluster, "jobs", ns, job_done, "bench.workunits.io/bare=true") as bare,
        ):
            jobs_side = _paced(
                cluster, ns, [bare_job(f"lat-job-{i}") for i in range(n)], rate, pods, timeout
            )
            wait_for(
                f"{n} bare Jobs to finish",
                lambda: bare.count(lambda s: s == "Complete") >= n,
                timeout,
            )
        floor_side = _latency_floor(cluster, n, rate, timeout)
        before = operator.usage()
        with Tracker(cluster, "jobs", ns, _owner("WorkUnit"), UNIT_UID) as jobs:
            units_side = _paced(
                cluster, ns, [workunit(f"lat-{i}") for i in range(n)], rate, jobs, timeout
            )
        after = operator.usage()
    figures.update({k: v for k, v in units_side.items()})
    figures.update({f"jobs_{k}": v for k, v in jobs_side.items()})
    figures.update({f"floor_{k}": v for k, v in floor_side.items()})
    figures["operator_cpu_seconds"] = round(after.cpu_seconds - before.cpu_seconds, 2)
    return figures


def _latency_floor(cluster: Cluster, n: int, rate: float, timeout: float) -> dict[str, Any]:
    """The units' side with no operator: in a namespace the operator does not serve,
    this client's own watch creates each unit's Job (owned by it) the moment the unit
    shows up, with no decision, cache or status write: the least a watch-driven
    operator's admission can take on this machine under this load. Left to finish
    before the units start."""
    ns = cluster.new_namespace("wu-bench-floor")
    with (
        _deleted(cluster, ns),
        ThreadPoolExecutor(SENDERS, thread_name_prefix="echo") as pool,
        Tracker(cluster, "jobs", ns, job_done, "bench.workunits.io/bare=true") as done,
        Tracker(cluster, "jobs", ns, _owner("WorkUnit"), "bench.workunits.io/bare=true") as jobs,
        Tracker(
            cluster,
            "workunits",
            ns,
            unit_phase,
            on_first=lambda unit: pool.submit(_owned_job, cluster, ns, unit),
        ),
    ):
        side = _paced(cluster, ns, [workunit(f"lat-{i}") for i in range(n)], rate, jobs, timeout)
        wait_for(
            f"{n} Jobs of the floor to finish",
            lambda: done.count(lambda s: s == "Complete") >= n,
            timeout,
        )
    return side


def _owner(kind: str) -> Callable[[dict[str, Any]], Any]:
    def owner(obj: dict[str, Any]) -> Any:
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == kind:
                return ref.get("name")
        return None

    return owner


def _paced(
    cluster: Cluster,
    ns: str,
    bodies: list[dict[str, Any]],
    rate: float,
    children: Tracker,
    timeout: float,
) -> dict[str, Any]:
    """Create ``bodies`` at ``rate`` per second; per body, the time from when its create
    was due to ``children`` first showing an object it owns."""
    sent: dict[str, float] = {}
    late: list[float] = []  # how far behind schedule each create was sent
    lock = threading.Lock()

    def send(body: dict[str, Any], due: float) -> None:
        with lock:
            sent[body["metadata"]["name"]] = due  # as scheduled: a slow client counts too
            late.append(time.monotonic() - due)
        cluster.create(body, ns)

    start = time.monotonic()
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="paced") as pool:
        futures = []
        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, body, due))
        for future in futures:
            future.result()
    achieved = len(bodies) / (time.monotonic() - start)
    wait_for(
        f"children of {len(bodies)} objects",
        lambda: len({o for o in children.objects.values() if o in sent}) >= len(bodies),
        timeout,
    )
    seen: dict[str, float] = {}
    with children._lock:
        for child, parent in children.objects.items():
            if parent in sent:
                seen[parent] = min(seen.get(parent, float("inf")), children.first_seen[child])
    delays = sorted(seen[name] - sent[name] for name in seen)
    return {
        "achieved_rate": round(achieved, 1),
        "with_child": len(delays),
        "p50_seconds": round(_quantile(delays, 0.50), 3),
        "p99_seconds": round(_quantile(delays, 0.99), 3),
        "max_seconds": round(delays[-1], 3) if delays else None,
        "send_late_p99_seconds": round(_quantile(sorted(late), 0.99), 3),
    }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


# ---- 5. recovery: SIGKILL with units in flight --------------------------------------


def recovery(
    env: Env,
    n: int = 1000,
    duration_ms: int = 3000,
    kill_at: float = 0.5,
    timeout: float = 600,
    stall: float = 60,
) -> dict[str, Any]:
    """N units whose pods run ``duration_ms``; once ``kill_at`` of them have a Job, the
    operator is killed (SIGKILL) and a new one started. Reported: seconds from the new
    process's start to its first write to a unit (progress resumes), duplicate Jobs
    (more than one Job for a unit's attempt), and units that never finish. With no
    unit changing phase for ``stall`` seconds, the run ends there and says so."""
    cluster, ns = env.cluster, env.namespace
    annotations = {"sim.workunits.io/duration-ms": str(duration_ms)}
    bodies = [workunit(f"rec-{i}", annotations=annotations) for i in range(n)]
    figures: dict[str, Any] = {"n": n, "duration_ms": duration_ms}
    first = env.operator(name="recovery-1").start()
    try:
        with (
            Tracker(cluster, "workunits", ns, unit_phase) as units,
            Tracker(cluster, "jobs", ns, lambda j: True, UNIT_UID) as jobs,
        ):
            start = time.monotonic()
            cluster.create_many(bodies, ns)
            wait_for(
                f"{kill_at:.0%} of the units to have a Job",
                lambda: len(jobs.objects) >= kill_at * n,
                timeout,
                interval=0.05,
            )
            figures["jobs_at_kill"] = len(jobs.objects)
            figures["finished_at_kill"] = units.count(lambda s: s in FINISHED)
            first.kill()
            killed = time.monotonic()
            audit_start = cluster.audit.offset()
            changes_at_kill = len(units.changes)

            spawned, spawned_wall = time.monotonic(), time.time()
            with env.operator(name="recovery-2"):
                healthy = time.monotonic()
                error = _await_finished(units, n, timeout, stall)
                end = time.monotonic()
            if error:
                figures["error"] = error
            # Progress resumes with the new process's first write (a Job or a status),
            # as the API server received it; without an audit log, with the first
            # change of phase the unit watch shows.
            # Writes the killed process had in flight can reach the API server after
            # the new one is spawned; the new one cannot write within its first second
            # (the interpreter and its imports take longer), so those are left out.
            first_write = _first_operator_write(cluster, audit_start, ns, spawned_wall + 1.0)
            later = [c[0] for c in units.changes[changes_at_kill:] if c[0] > healthy]
            if first_write is not None:
                resumed: float | None = spawned + (first_write - spawned_wall)
            else:
                resumed = min(later) if later else None
    finally:
        first.kill()

    phases = Counter(u.get("status", {}).get("phase") for u in cluster.list("workunits", ns))
    per_attempt = Counter(
        (j["metadata"]["labels"].get(UNIT_UID), j["metadata"]["labels"].get(ATTEMPT))
        for j in cluster.list("jobs", ns, UNIT_UID)
    )
    figures.update(
        {
            "restart_to_healthy_seconds": round(healthy - spawned, 2),
            "restart_to_progress_seconds": _since(resumed, spawned),
            "kill_to_progress_seconds": _since(resumed, killed),
            "total_seconds": round(end - start, 2),
            "jobs": sum(per_attempt.values()),
            "duplicate_jobs": sum(c - 1 for c in per_attempt.values() if c > 1),
            "units_lost": n - phases.get("Succeeded", 0),
            "phases": dict(phases),
            "progress_from": "audit log" if first_write is not None else "unit watch",
        }
    )
    return figures


def _await_finished(units: Tracker, n: int, timeout: float, stall: float) -> str | None:
    """Wait for ``n`` units to finish; say why not when no unit moves for ``stall`` s."""
    deadline = time.monotonic() + timeout
    while True:
        finished = units.count(lambda s: s in FINISHED)
        if finished >= n:
            return None
        last = units.changes[-1][0] if units.changes else 0.0
        now = time.monotonic()
        if now - last > stall:
            return f"no unit changed phase for {stall:.0f}s; {finished} of {n} finished"
        if now > deadline:
            return f"timed out after {timeout:.0f}s; {finished} of {n} finished"
        time.sleep(0.5)


def _since(moment: float | None, origin: float) -> float | None:
    return None if moment is None else round(moment - origin, 2)


def _first_operator_write(
    cluster: Cluster, start: int, namespace: str, after: float
) -> float | None:
    """Wall time of the operator's first write in ``namespace`` received after ``after``."""
    if not cluster.audit.available:
        return None
    for entry in cluster.audit.entries(start):
        ref = entry.get("objectRef") or {}
        if ref.get("namespace") != namespace or agent_of(entry.get("userAgent", "")) != "operator":
            continue
        stamp = datetime.fromisoformat(entry["requestReceivedTimestamp"]).timestamp()
        if stamp > after:
            return stamp
    return None
