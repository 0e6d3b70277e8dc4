"""The WorkUnit state machine: one pure function from what is observed to what to do.

``reconcile`` takes the unit, the attempts its Jobs show, what its dependencies are,
and the time; it returns the status the unit should have and the actions that get it
there. It remembers nothing: everything it needs to carry between calls is in the
status it returns, so a restarted operator makes the same decisions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from workunits.api.workunit import (
    Action,
    AttemptRecord,
    Phase,
    ResultRef,
    WorkUnit,
    WorkUnitStatus,
)
from workunits.core import quantity
from workunits.core.conditions import phase_conditions
from workunits.core.names import child_name, job_name
from workunits.core.observe import ObservedAttempt
from workunits.core.policy import (
    DEADLINE_EXCEEDED,
    JOB_DELETED,
    OOM_KILLED,
    START_TIMEOUT,
    Failure,
    backoff_delay,
    classify,
)
from workunits.core.timefmt import format_time, parse_time

HISTORY_LIMIT = 10
RESULT_STATUS_LIMIT = 1024  # bytes of result kept in status; larger goes to a ConfigMap
MESSAGE_LIMIT = 512
RESULT_WAIT = timedelta(seconds=15)  # how long a success waits for its pod's final status

# Reasons for a unit's own state.
DEPENDENCY_FAILED = "DependencyFailed"
DEPENDENCY_NOT_FOUND = "DependencyNotFound"
INVALID_SPEC = "InvalidSpec"

# Why a failed attempt's action is Fail when the retry policy said Retry or Ignore.
NO_ATTEMPTS_LEFT = "NoAttemptsLeft"
PAST_DEADLINE = "PastDeadline"


@dataclass(frozen=True)
class Dependency:
    """Another unit this one depends on, as the caller found it (None: not found)."""

    phase: Phase | None
    depends_on: tuple[str, ...] = ()


# ---- actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateJob:
    attempt: int
    job_name: str
    memory: str | None  # memory request and limit after OOM growth, if any


@dataclass(frozen=True)
class DeleteJob:
    job_name: str
    why: str


@dataclass(frozen=True)
class StoreResult:
    """Keep a result too large for the status in a ConfigMap the unit owns."""

    text: str


@dataclass(frozen=True)
class DeleteUnit:
    why: str


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


UnitAction = CreateJob | DeleteJob | StoreResult | DeleteUnit | Event


@dataclass
class Decision:
    status: WorkUnitStatus
    actions: list[UnitAction] = field(default_factory=list)
    wake_at: datetime | None = None  # reconcile again then, if nothing else happens first

    def wake(self, moment: datetime | None) -> None:
        if moment is not None and (self.wake_at is None or moment < self.wake_at):
            self.wake_at = moment


def _trim(text: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def parse_result(text: str) -> Any:
    """A termination message as JSON when it parses, else as the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def given_memory(unit: WorkUnit) -> str | None:
    """The memory the unit asks for: its limit, else its request (first container)."""
    resources: Mapping[str, Any] = {}
    if unit.spec.resources is not None:
        resources = unit.spec.resources.dump()
    elif unit.spec.template is not None:
        containers = (unit.spec.template.get("spec") or {}).get("containers") or [{}]
        resources = containers[0].get("resources") or {}
    for part in ("limits", "requests"):
        value = (resources.get(part) or {}).get("memory")
        if value is not None:
            return quantity.as_string(value)
    return None


def find_cycle(name: str, graph: Mapping[str, Dependency], first: Sequence[str]) -> list[str]:
    """A path from ``name`` back to itself through dependsOn, or [] when there is none."""
    stack: list[tuple[str, list[str]]] = [(dep, [name, dep]) for dep in first]
    seen: set[str] = set()
    while stack:
        current, path = stack.pop()
        if current == name:
            return path
        if current in seen:
            continue
        seen.add(current)
        node = graph.get(current)
        if node is not None:
            stack.extend((nxt, [*path, nxt]) for nxt in node.depends_on)
    return []


# ---- the reconcile -------------------------------------------------------------------


def reconcile(
    unit: WorkUnit,
    attempts: Sequence[ObservedAttempt],
    dependencies: Mapping[str, Dependency],
    now: datetime,
    rand: Callable[[], float],
) -> Decision:
    """What the unit's status should be, and what to do about it, at ``now``."""
    return _Reconciler(unit, attempts, dependencies, now, rand).run()


def running_report_due(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    job_created: datetime | None,
    now: datetime,
    delay: timedelta,
) -> datetime | None:
    """When a change to Running may be written; None: now.

    A new attempt is reported as Running once its Job is ``delay`` old. An attempt that
    ends sooner (most short tasks) is then reported once, with its outcome, and saves
    the API server a status write. Holding back loses nothing: the Job's name is
    derived from the unit and the attempt, so the next reconcile finds it (even after a
    restart) and counts the attempt from it.
    """
    if delay <= timedelta(0) or job_created is None:
        return None
    if new.get("phase") != Phase.RUNNING.value or old.get("phase") == Phase.RUNNING.value:
        return None
    due = job_created + delay
    return due if now < due else None


class _Reconciler:
    def __init__(
        self,
        unit: WorkUnit,
        attempts: Sequence[ObservedAttempt],
        dependencies: Mapping[str, Dependency],
        now: datetime,
        rand: Callable[[], float],
    ) -> None:
        self.unit = unit
        self.spec = unit.spec
        self.now = now
        self.stamp = format_time(now)
        self.rand = rand
        self.dependencies = dependencies
        self.jobs = {a.attempt: a for a in attempts}
        self.old = unit.status
        self.status = unit.status.clone()
        self.decision = Decision(self.status)
        self.adopted: Event | None = None  # the start of an attempt first seen now
        self.final: Event | None = None  # the unit's end

    # -- helpers --

    def event(self, kind: str, reason: str, message: str) -> Event:
        event = Event(kind, reason, message)
        self.decision.actions.append(event)
        return event

    def deadline(self) -> datetime | None:
        created = parse_time(self.unit.metadata.creation_timestamp)
        if self.spec.deadline_seconds is None or created is None:
            return None
        return created + timedelta(seconds=self.spec.deadline_seconds)

    def finish(self, phase: Phase, reason: str, message: str) -> None:
        self.status.phase = phase
        self.status.reason = reason
        self.status.message = _trim(message)
        self.status.completion_time = self.status.completion_time or self.stamp
        self.status.next_attempt_at = None
        kind = "Normal" if phase is Phase.SUCCEEDED else "Warning"
        self.final = self.event(kind, reason, message)

    def record(self, attempt: int) -> AttemptRecord | None:
        for entry in self.status.history:
            if entry.attempt == attempt:
                return entry
        return None

    def set_record(self, entry: AttemptRecord) -> None:
        history = [e for e in self.status.history if e.attempt != entry.attempt]
        history.append(entry)
        history.sort(key=lambda e: e.attempt)
        self.status.history = history[-HISTORY_LIMIT:]

    def active(self) -> ObservedAttempt | None:
        latest = self.jobs.get(self.status.attempts)
        return latest if latest is not None and latest.state == "Active" else None

    # -- the steps --

    def run(self) -> Decision:
        if self.status.phase is None:
            self.status.phase = Phase.PENDING

        self.adopt()
        self.refresh_history()

        if not Phase(self.status.phase).finished:
            self.step()
        self.after_finish()
        self.fold_start()

        self.status.observed_generation = self.unit.metadata.generation
        self.status.conditions = self.conditions()
        return self.decision

    def adopt(self) -> None:
        """A Job created but not recorded (the operator stopped in between) is adopted."""
        if self.jobs:
            newest = max(self.jobs)
            if newest > self.status.attempts:
                seen = self.jobs[newest]
                self.status.attempts = newest
                self.status.job_name = seen.job_name
                if not self.status.start_time:
                    first = self.jobs[min(self.jobs)]
                    began = first.start_time or first.created
                    self.status.start_time = format_time(began) if began else self.stamp
                self.adopted = self.event(
                    "Normal",
                    "AttemptStarted",
                    f"attempt {newest} started as Job {seen.job_name}",
                )

    def refresh_history(self) -> None:
        """Bring the history in line with the Jobs; a running attempt whose Job vanished
        is a failure (JobDeleted). A finished one whose Job is gone stays as it was."""
        for number in range(
            max(1, self.status.attempts - HISTORY_LIMIT + 1), self.status.attempts + 1
        ):
            seen = self.jobs.get(number)
            entry = self.record(number)
            if seen is None:
                if entry is not None and entry.outcome == "Running":
                    entry = entry.model_copy(
                        update={
                            "outcome": "Failed",
                            "reason": JOB_DELETED,
                            "message": "the attempt's Job was deleted while it ran",
                            "completion_time": self.stamp,
                        }
                    )
                    self.set_record(entry)
                elif entry is None and number == self.status.attempts and not self.finished():
                    # Created (status says so) but neither recorded nor seen: the Job is
                    # gone before we saw it. Treat it as deleted while running.
                    self.set_record(
                        AttemptRecord(
                            attempt=number,
                            job_name=job_name(
                                self.unit.metadata.name, self.unit.metadata.uid, number
                            ),
                            start_time=self.stamp,
                            completion_time=self.stamp,
                            outcome="Failed",
                            reason=JOB_DELETED,
                            message="the attempt's Job was deleted before it was observed",
                        )
                    )
                continue
            if entry is not None and entry.outcome not in (None, "Running"):
                continue  # finished attempts are final
            self.set_record(self.observed_record(seen, entry))

    def fold_start(self) -> None:
        """An attempt whose start was never reported (it ended within the running delay,
        or while the operator was down) and that ends the unit gets one Event, its
        outcome naming the Job, rather than two written together."""
        start, end = self.adopted, self.final
        if start is None or end is None:
            return
        job = f" (Job {self.status.job_name})" if self.status.job_name else ""
        self.decision.actions = [
            Event(a.type, a.reason, a.message + job) if a is end else a
            for a in self.decision.actions
            if a is not start
        ]

    def finished(self) -> bool:
        return self.status.phase is not None and Phase(self.status.phase).finished

    def observed_record(self, seen: ObservedAttempt, entry: AttemptRecord | None) -> AttemptRecord:
        pod = seen.pod
        start = seen.start_time or seen.created
        if entry is not None and entry.start_time:
            started = entry.start_time  # as first recorded: no rewrite for a second's skew
        else:
            started = format_time(start) if start else self.stamp
        record = AttemptRecord(
            attempt=seen.attempt,
            job_name=seen.job_name,
            start_time=started,
            outcome="Running",
            disruptions=max(seen.disruptions, (entry.disruptions or 0) if entry else 0) or None,
        )
        if seen.state == "Active":
            return record
        end = seen.completion_time or self.now
        record.completion_time = format_time(end)
        record.exit_code = pod.exit_code if pod else None
        if seen.state == "Succeeded":
            record.outcome = "Succeeded"
            record.reason = "Completed"
            return record
        record.outcome = "Failed"
        record.reason, record.message = self.failure_reason(seen)
        return record

    def failure_reason(self, seen: ObservedAttempt) -> tuple[str, str]:
        pod = seen.pod
        job_reason = seen.job_reason or "Failed"
        if job_reason == DEADLINE_EXCEEDED:
            return DEADLINE_EXCEEDED, (
                f"the attempt ran longer than attemptTimeoutSeconds "
                f"({self.spec.attempt_timeout_seconds}s)"
            )
        if pod is not None and pod.reason:
            detail = (
                f"container exited with code {pod.exit_code}"
                if pod.exit_code is not None
                else "the pod failed"
            )
            message = pod.message if pod.message and pod.reason != "Completed" else None
            return pod.reason, _trim(
                f"{detail} ({pod.reason})" + (f": {message}" if message else "")
            ) or ""
        if pod is not None and pod.exit_code is not None:
            return "Error", f"container exited with code {pod.exit_code}"
        return job_reason, seen.job_message or "the attempt's Job failed"

    def step(self) -> None:
        spec = self.spec

        # Cancel wins over everything; a running attempt is stopped.
        if spec.cancel:
            running = self.active()
            if running is not None:
                self.decision.actions.append(DeleteJob(running.job_name, "cancelled"))
                self.mark_latest("Cancelled", "Cancelled", "the unit was cancelled")
            self.finish(Phase.CANCELLED, "Cancelled", "the unit was cancelled (spec.cancel)")
            return

        deadline = self.deadline()
        running = self.active()
        if running is not None:
            self.watch_running(running, deadline)
            return

        latest = self.record(self.status.attempts) if self.status.attempts else None
        if latest is not None and latest.outcome == "Succeeded":
            self.succeed(latest)
            return
        unjudged = (
            latest is not None
            and latest.outcome in ("Failed", "Cancelled")
            and latest.action is None
        )
        if unjudged and self.judge_failure(latest, deadline):  # type: ignore[arg-type]
            return

        if deadline is not None and self.now >= deadline:
            waiting = self.record(self.status.attempts) if self.status.attempts else None
            if waiting is not None and waiting.action in (Action.RETRY, Action.IGNORE):
                self.overrule(waiting, PAST_DEADLINE)  # its retry never came
            self.finish(
                Phase.FAILED,
                DEADLINE_EXCEEDED,
                f"the unit's deadline ({spec.deadline_seconds}s) passed; "
                "no attempt starts after it",
            )
            return

        if self.status.attempts == 0 and not self.dependencies_ready():
            return

        if spec.suspend:
            self.status.phase = Phase.PENDING if self.status.attempts == 0 else self.status.phase
            self.status.reason = "Suspended"
            self.status.message = "spec.suspend is true: no new attempt starts"
            if self.old.reason != "Suspended":
                self.event("Normal", "Suspended", self.status.message)
            return

        if self.status.next_attempt_at:
            due = parse_time(self.status.next_attempt_at)
            if due is not None and self.now < due:
                self.status.phase = Phase.BACKING_OFF
                self.decision.wake(due)
                return

        self.start_attempt()

    def watch_running(self, running: ObservedAttempt, deadline: datetime | None) -> None:
        spec = self.spec
        self.status.phase = Phase.RUNNING
        if running.deleting:
            return
        if deadline is not None and self.now >= deadline:
            self.decision.actions.append(DeleteJob(running.job_name, "deadline"))
            self.mark_latest("Failed", DEADLINE_EXCEEDED, "stopped at the unit's deadline")
            self.finish(
                Phase.FAILED,
                DEADLINE_EXCEEDED,
                f"the unit's deadline ({spec.deadline_seconds}s) passed while "
                f"attempt {running.attempt} ran",
            )
            return
        self.decision.wake(deadline)
        if not running.started and running.waiting_since is not None:
            limit = running.waiting_since + timedelta(seconds=spec.start_timeout_seconds)
            if self.now >= limit:
                pod = running.pod
                reason = (pod.waiting_reason if pod else None) or START_TIMEOUT
                if pod is None:
                    detail = (
                        f"no pod was made for Job {running.job_name}; its events say why "
                        "(a missing ServiceAccount, a quota, an admission policy...)"
                    )
                else:
                    detail = pod.waiting_message or "the pod never started"
                self.decision.actions.append(DeleteJob(running.job_name, "start timeout"))
                self.mark_latest(
                    "Failed", reason, f"not started after {spec.start_timeout_seconds}s: {detail}"
                )
                latest = self.record(running.attempt)
                assert latest is not None
                self.judge_failure(latest, deadline)
                if not self.finished():
                    self.status.phase = Phase.BACKING_OFF
                return
            self.decision.wake(limit)
        if self.old.phase is not Phase.RUNNING:  # adopted, or resumed: say what runs
            self.status.reason = "Running"
            self.status.message = f"attempt {running.attempt} is running"

    def mark_latest(self, outcome: str, reason: str, message: str) -> None:
        entry = self.record(self.status.attempts)
        if entry is None:
            return
        self.set_record(
            entry.model_copy(
                update={
                    "outcome": outcome,
                    "reason": reason,
                    "message": _trim(message),
                    "completion_time": entry.completion_time or self.stamp,
                }
            )
        )

    def succeed(self, latest: AttemptRecord) -> None:
        seen = self.jobs.get(latest.attempt)
        if seen is not None and (seen.pod is None or seen.pod.phase != "Succeeded"):
            # The Job's success can reach us before its pod's final status, which holds
            # the result: wait for the pod a little, rather than finish without it.
            ended = seen.completion_time or self.now
            if self.now < ended + RESULT_WAIT:
                self.decision.wake(self.now + timedelta(seconds=1))
                return
        text = seen.pod.message if seen and seen.pod and seen.pod.message else None
        if text is not None:
            size = len(text.encode())
            if size <= RESULT_STATUS_LIMIT:
                self.status.result = parse_result(text)
            else:
                self.decision.actions.append(StoreResult(text))
                self.status.result_ref = ResultRef(
                    config_map=child_name(
                        self.unit.metadata.name, self.unit.metadata.uid, "result"
                    ),
                    key="result",
                    bytes=size,
                )
        self.finish(Phase.SUCCEEDED, "Succeeded", f"attempt {latest.attempt} succeeded")

    def judge_failure(self, latest: AttemptRecord, deadline: datetime | None) -> bool:
        """Apply the retry policy to the latest failed attempt. True when the unit ended."""
        policy = self.spec.retry
        seen = self.jobs.get(latest.attempt)
        conditions = seen.pod.conditions if seen and seen.pod else frozenset()
        failure = Failure(latest.reason or "Error", latest.exit_code, conditions)
        action, rule = classify(policy, failure)
        if action is not Action.IGNORE:
            self.status.failed_attempts += 1
        self.set_record(latest.model_copy(update={"action": action.value}))
        self.status.reason = latest.reason
        self.status.message = latest.message
        why = f"rule {rule}" if rule is not None else "defaultAction"
        what = f"attempt {latest.attempt} failed ({latest.reason}"
        what += f", exit code {latest.exit_code})" if latest.exit_code is not None else ")"
        if latest.message:
            what += f": {latest.message}"

        if action is Action.FAIL:
            self.finish(
                Phase.FAILED, latest.reason or "Failed", f"{what}; retry policy ({why}) says Fail"
            )
            return True
        if action is Action.RETRY and self.status.failed_attempts >= policy.max_attempts:
            self.overrule(latest, NO_ATTEMPTS_LEFT)
            self.finish(
                Phase.FAILED,
                latest.reason or "Failed",
                f"{what}; all {policy.max_attempts} attempts used",
            )
            return True

        if latest.reason == OOM_KILLED and policy.oom_memory_factor is not None:
            self.grow_memory(policy.oom_memory_factor)

        delay = backoff_delay(policy.backoff, max(self.status.failed_attempts, 1), self.rand)
        due = self.now + timedelta(seconds=delay)
        if deadline is not None and due >= deadline:
            self.overrule(latest, PAST_DEADLINE)
            self.finish(
                Phase.FAILED,
                DEADLINE_EXCEEDED,
                f"{what}; the next attempt would start after the unit's deadline",
            )
            return True
        self.status.phase = Phase.BACKING_OFF
        self.status.next_attempt_at = format_time(due + timedelta(seconds=0.999))
        self.decision.wake(parse_time(self.status.next_attempt_at))
        self.event(
            "Warning",
            "BackingOff",
            f"{what}; retrying at {self.status.next_attempt_at} ({why}: {action.value})",
        )
        return False

    def overrule(self, latest: AttemptRecord, why: str) -> None:
        """Record Fail, and why, for a failure the policy would retry but that ends the
        unit: the history says what happened, not what the policy asked for."""
        self.set_record(
            latest.model_copy(update={"action": Action.FAIL.value, "action_reason": why})
        )

    def grow_memory(self, factor: float) -> None:
        spec = self.spec
        current = self.status.memory or given_memory(self.unit)
        if current is None:
            return  # nothing to grow from: the attempt keeps the namespace's defaults
        grown = quantity.parse(current) * Decimal(str(factor))
        if spec.retry.oom_memory_max is not None:
            grown = min(grown, quantity.parse(spec.retry.oom_memory_max))
        self.status.memory = quantity.format_bytes(grown)

    def dependencies_ready(self) -> bool:
        names = self.spec.depends_on or []
        if not names:
            return True
        me = self.unit.metadata.name
        if me in names:
            self.finish(Phase.FAILED, INVALID_SPEC, "spec.dependsOn names the unit itself")
            return False
        cycle = find_cycle(me, self.dependencies, names)
        if cycle:
            self.finish(
                Phase.FAILED, INVALID_SPEC, "spec.dependsOn makes a cycle: " + " -> ".join(cycle)
            )
            return False
        missing = [
            n
            for n in names
            if self.dependencies.get(n) is None or self.dependencies[n].phase is None
        ]
        failed = [
            n
            for n in names
            if n not in missing
            and Phase(self.dependencies[n].phase or Phase.PENDING)
            in (Phase.FAILED, Phase.CANCELLED)
        ]
        if failed:
            self.finish(
                Phase.FAILED,
                DEPENDENCY_FAILED,
                f"dependency {failed[0]} ended {self.dependencies[failed[0]].phase}",
            )
            return False
        waiting = [
            n
            for n in names
            if n not in missing and self.dependencies[n].phase is not Phase.SUCCEEDED
        ]
        if missing or waiting:
            self.status.phase = Phase.BLOCKED
            if missing:
                self.status.reason = DEPENDENCY_NOT_FOUND
                self.status.message = "waiting for WorkUnits that do not exist yet: " + ", ".join(
                    sorted(missing)
                )
            else:
                self.status.reason = "WaitingForDependencies"
                self.status.message = "waiting for " + ", ".join(sorted(waiting))
            if self.old.reason != self.status.reason:
                kind = "Warning" if missing else "Normal"
                self.event(kind, self.status.reason, self.status.message)
            return False
        return True

    def start_attempt(self) -> None:
        number = self.status.attempts + 1
        name = job_name(self.unit.metadata.name, self.unit.metadata.uid, number)
        self.decision.actions.append(CreateJob(number, name, self.status.memory))
        self.status.attempts = number
        self.status.job_name = name
        self.status.phase = Phase.RUNNING
        self.status.reason = "Running"
        self.status.message = f"attempt {number} started"
        self.status.next_attempt_at = None
        self.status.start_time = self.status.start_time or self.stamp
        self.set_record(
            AttemptRecord(attempt=number, job_name=name, start_time=self.stamp, outcome="Running")
        )
        self.status.disruptions = sum(e.disruptions or 0 for e in self.status.history)
        self.event("Normal", "AttemptStarted", f"attempt {number} started as Job {name}")
        self.decision.wake(self.now + timedelta(seconds=self.spec.start_timeout_seconds))

    def after_finish(self) -> None:
        self.status.disruptions = max(
            self.status.disruptions, sum(e.disruptions or 0 for e in self.status.history)
        )
        if not self.finished():
            return
        # A finished unit never runs again; a Job still active is stopped.
        running = self.jobs.get(self.status.attempts)
        if (
            running is not None
            and running.state == "Active"
            and not running.deleting
            and not any(isinstance(a, DeleteJob) for a in self.decision.actions)
        ):
            self.decision.actions.append(DeleteJob(running.job_name, "the unit finished"))
        ttl = self.spec.ttl_seconds_after_finished
        done = parse_time(self.status.completion_time)
        if ttl is not None and done is not None:
            expiry = done + timedelta(seconds=ttl)
            if self.now >= expiry:
                self.decision.actions.append(DeleteUnit("ttlSecondsAfterFinished"))
            else:
                self.decision.wake(expiry)

    def conditions(self) -> list[Any]:
        phase = Phase(self.status.phase or Phase.PENDING)
        return phase_conditions(
            self.status.conditions,
            phase,
            self.status.reason or phase.value,
            self.status.message or "",
            "AttemptRunning",
            self.stamp,
            self.unit.metadata.generation,
        )
