"""The WorkJob orchestrator: one pure function from what is observed to what to do.

``reconcile`` takes the WorkJob, the WorkUnits it owns (as :class:`ChildUnit`), the
ConfigMap data it asked for, and the time. It returns the status the WorkJob should
have and the actions that get it there: units to create, cancel or delete, results to
store, events, a time to look again. It remembers nothing between calls.

What the status remembers, and why it stays small
-------------------------------------------------
Finished units may vanish (their TTL, a user), so the WorkJob never relies on seeing
them again. Per task, the status keeps:

- ``nextIndex``: every index below it has had its unit created. Units are created in
  index order, so one number says which exist; a unit seen above it moves it up
  (adoption after a lost status write). ``rerunIndices``/``rerunNext`` say the same
  for the indices re-created by the current re-run.
- ``succeeded``, ``failed``, ``cancelled``: the indices seen finish, as ``[start,
  end)`` ranges. The invariant: an index is in at most one of them, and once in one
  it never leaves it, except that a re-run moves failed and cancelled indices into
  ``rerunIndices``. Counts are derived from the ranges and the live children, so
  they survive any deletion.
- Results: each succeeded unit's result is written, when first seen, to the task's
  results ConfigMap for its chunk of 256 indices (``StoreResults``, a merge of one
  key per index, name from :func:`results_config_map`). The status holds none of
  them. The aggregate is computed once, when the task is done, from those
  ConfigMaps; under 4 KiB it goes in the status, above in ConfigMaps it points to.

A created index that is neither finished nor among the children is *missing*: the
cache has not seen it yet, or someone deleted it. It counts against parallelism and
its CreateUnit is sent again (deterministic names make that harmless), so neither a
slow cache nor a deleted unit can push the WorkJob past its parallelism or stall it.

The caller applies StoreResults before writing the status, so a result is stored
before the status says it was seen. When ``decision.wanted`` names ConfigMaps that
were not in ``inputs``, the caller loads them and calls ``reconcile`` again with the
same objects, discarding the first decision; :func:`inputs_needed` says what to load
beforehand so that is rare.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from workunits.api.common import MAX_SECONDS
from workunits.api.workjob import (
    ConfigMapRef,
    Generator,
    Task,
    TaskStatus,
    UnitFailure,
    WorkJob,
)
from workunits.api.workjob import WorkJobStatus as JobStatus
from workunits.api.workunit import INPUTS_DIR, Phase
from workunits.core.aggregate import AggregateError, aggregate
from workunits.core.conditions import phase_conditions
from workunits.core.dag import DagError, validate
from workunits.core.generators import (
    NO_SOURCES,
    ConfigMapNotFound,
    GeneratorError,
    Items,
    NotLoaded,
    Sources,
)
from workunits.core.names import (
    LABEL_INDEX,
    LABEL_MANAGED_BY,
    LABEL_RERUN,
    LABEL_TASK,
    LABEL_WORKJOB,
    LABEL_WORKJOB_UID,
    MANAGER,
    child_name,
    label_value,
    unit_name,
)
from workunits.core.ranges import IndexSet
from workunits.core.substitution import SubstitutionError, render_unit_spec, substitute
from workunits.core.timefmt import format_time, parse_time
from workunits.core.unit import Event

RESULT_CHUNK = 256  # results per ConfigMap: 256 KiB at the 1 KiB a unit's status keeps
AGGREGATE_STATUS_LIMIT = 4096  # bytes of aggregate JSON kept in the status
CONFIGMAP_PART = 512 * 1024  # bytes of text per ConfigMap, well under its 1 MiB limit
FAILURE_SAMPLE = 20
MESSAGE_LIMIT = 256
INPUT_RETRY = timedelta(seconds=30)  # a missing ConfigMap is looked for again after this

# Reasons of the WorkJob's own state.
INVALID_SPEC = "InvalidSpec"
INVALID_INPUT = "InvalidInput"
FAILURE_BUDGET = "FailureBudgetExceeded"
AGGREGATE_FAILED = "AggregateFailed"

# How a task's message begins when its aggregate failed: the mark the status keeps.
AGGREGATE_FAILURE = "aggregate failed: "


def aggregate_failed(status: TaskStatus) -> bool:
    """The task's aggregate was computed and failed (its message says why)."""
    return status.aggregated and (status.message or "").startswith(AGGREGATE_FAILURE)


@dataclass(frozen=True, slots=True)
class ChildUnit:
    """A WorkUnit the WorkJob owns, as the caller read it.

    ``task`` and ``index`` come from the labels workunits.io/task and workunits.io/index,
    ``rerun`` from workunits.io/rerun; ``result`` is the unit's result parsed (None when
    it has none, or when it is kept in a ConfigMap the caller did not read).
    """

    task: str
    index: int
    name: str
    phase: Phase | None = None
    reason: str | None = None
    message: str | None = None
    result: Any = None
    rerun: int = 0
    created: datetime | None = None
    cancel_requested: bool = False  # spec.cancel is already true

    @property
    def finished(self) -> bool:
        return self.phase is not None and Phase(self.phase).finished


# ---- actions -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateUnit:
    task: str
    index: int
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]  # the WorkUnit's spec, JSON form
    priority: int


@dataclass(frozen=True)
class CancelUnit:
    """Set spec.cancel on the unit."""

    name: str


@dataclass(frozen=True)
class DeleteUnit:
    name: str
    why: str


@dataclass(frozen=True)
class StoreResults:
    """Merge ``data`` into the ConfigMap (creating it, owned by the WorkJob)."""

    config_map: str
    data: dict[str, str]


@dataclass(frozen=True)
class DeleteWorkJob:
    why: str


JobAction = CreateUnit | CancelUnit | DeleteUnit | StoreResults | DeleteWorkJob | Event


@dataclass
class JobDecision:
    status: JobStatus
    actions: list[JobAction] = field(default_factory=list)
    wake_at: datetime | None = None  # reconcile again then, if nothing else happens first
    wanted: set[str] = field(default_factory=set)  # ConfigMaps needed, not in inputs

    def wake(self, moment: datetime | None) -> None:
        if moment is not None and (self.wake_at is None or moment < self.wake_at):
            self.wake_at = moment


# ---- names -----------------------------------------------------------------------------


def results_config_map(workjob: WorkJob, task: str, chunk: int) -> str:
    """The ConfigMap holding the results of ``task``'s indices in ``chunk``."""
    return child_name(workjob.metadata.name, workjob.metadata.uid, f"{task}-results-{chunk}")


def aggregate_config_map(workjob: WorkJob, task: str, part: int = 0) -> str:
    what = f"{task}-aggregate" + (f"-{part}" if part else "")
    return child_name(workjob.metadata.name, workjob.metadata.uid, what)


def _chunks_of(indices: IndexSet) -> list[int]:
    chunks: list[int] = []
    for start, end in zip(indices.starts, indices.ends, strict=True):
        for chunk in range(start // RESULT_CHUNK, (end - 1) // RESULT_CHUNK + 1):
            if not chunks or chunks[-1] != chunk:
                chunks.append(chunk)
    return chunks


def inputs_needed(workjob: WorkJob) -> set[str]:
    """The ConfigMaps the next reconcile will probably read: load them into ``inputs``."""
    status = {t.name: t for t in workjob.status.tasks}
    needed: set[str] = set()
    for task in workjob.spec.tasks:
        state = status.get(task.name) or TaskStatus(name=task.name)
        if state.aggregated and (state.phase is Phase.SUCCEEDED or aggregate_failed(state)):
            continue
        generator = task.generator
        if generator is not None and generator.config_map is not None:
            needed.add(generator.config_map.name)
        if generator is not None and generator.from_task is not None:
            source = status.get(generator.from_task.task)
            if source is not None:
                needed.update(
                    results_config_map(workjob, source.name, c)
                    for c in _chunks_of(IndexSet(source.succeeded))
                )
        near_done = state.total is not None and state.next_index >= state.total
        if task.aggregate is not None and near_done and not state.aggregated:
            needed.update(
                results_config_map(workjob, task.name, c)
                for c in _chunks_of(IndexSet(state.succeeded))
            )
    return needed


def _trim(text: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def split_text(text: str, limit: int = CONFIGMAP_PART) -> list[str]:
    """A text in parts of at most ``limit`` UTF-8 bytes, never splitting a character."""
    data = text.encode()
    parts: list[str] = []
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # back to the start of a character
        parts.append(data[:cut].decode())
        data = data[cut:]
    return parts or [""]


# ---- the reconcile -------------------------------------------------------------------


def reconcile(
    workjob: WorkJob,
    children: Sequence[ChildUnit],
    inputs: Mapping[str, Any],
    now: datetime,
) -> JobDecision:
    """What the WorkJob's status should be, and what to do about it, at ``now``.

    ``inputs`` maps a ConfigMap's name to its data (None: it does not exist).
    """
    return _Reconciler(workjob, children, inputs, now).run()


class _Stop(Exception):
    """Raised inside a step when the WorkJob has just finished: skip the rest."""


class _Task:
    """One task during one reconcile: its spec, its status, and its units by index."""

    def __init__(self, spec: Task, status: TaskStatus, workjob: str, rerun: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.status = status
        self.workjob = workjob
        self.generation = rerun
        self.succeeded = IndexSet(status.succeeded)
        self.failed = IndexSet(status.failed)
        self.cancelled = IndexSet(status.cancelled)
        self.rerun = IndexSet(status.rerun_indices)
        self.children: dict[int, list[ChildUnit]] = {}
        self.live: dict[int, ChildUnit | None] = {}  # None: created, not seen (missing)
        self.items: Items | None = None
        self.ready = False
        self.was_done = status.phase is Phase.SUCCEEDED

    # -- what an index is --

    def expected_name(self, index: int) -> str:
        rerun = self.generation if index in self.rerun else 0
        return unit_name(self.workjob, self.name, index, rerun)

    def done(self, index: int) -> bool:
        return index in self.succeeded or index in self.failed or index in self.cancelled

    def created(self, index: int) -> bool:
        if index in self.rerun:
            return index < self.status.rerun_next
        return index < self.status.next_index

    def finished(self) -> IndexSet:
        every = IndexSet()
        for part in (self.succeeded, self.failed, self.cancelled):
            every.update(part)
        return every

    @property
    def total(self) -> int | None:
        return self.status.total

    @property
    def is_done(self) -> bool:
        """Every unit finished, which needs the tasks it depends on done first (an empty
        task is not done before them)."""
        total = self.total
        return self.ready and total is not None and len(self.finished()) >= total

    @property
    def failures(self) -> int:
        return len(self.failed) + len(self.cancelled)

    def candidates(self) -> Iterator[int]:
        """Indices whose unit is still to be created, in index order."""
        for index in self.rerun:
            if index >= self.status.rerun_next and not self.done(index):
                yield index
        yield from range(self.status.next_index, self.total or 0)

    def save(self) -> None:
        self.status.succeeded = self.succeeded.to_list()
        self.status.failed = self.failed.to_list()
        self.status.cancelled = self.cancelled.to_list()
        self.status.rerun_indices = self.rerun.to_list()


class _Reconciler:
    def __init__(
        self,
        workjob: WorkJob,
        children: Sequence[ChildUnit],
        inputs: Mapping[str, Any],
        now: datetime,
    ) -> None:
        self.job = workjob
        self.spec = workjob.spec
        self.children = children
        self.inputs = inputs
        self.now = now
        self.stamp = format_time(now)
        self.status = workjob.status.clone()
        self.decision = JobDecision(self.status)
        self.tasks: dict[str, _Task] = {}
        self.order: list[str] = []
        self.stored: dict[str, dict[str, str]] = {}  # results stored by this reconcile

    # -- helpers --

    def event(self, kind: str, reason: str, message: str) -> None:
        self.decision.actions.append(Event(kind, reason, message))

    def finished(self) -> bool:
        return self.status.phase is not None and Phase(self.status.phase).finished

    def finish(self, phase: Phase, reason: str, message: str) -> None:
        self.status.phase = phase
        self.status.reason = reason
        self.status.message = _trim(message, 1024)
        self.status.completion_time = self.status.completion_time or self.stamp
        self.status.eta = None
        self.event("Normal" if phase is Phase.SUCCEEDED else "Warning", reason, message)

    def stop(self, phase: Phase, reason: str, message: str) -> None:
        """End the WorkJob early: nothing more is created, and every unit still running
        is told to stop (by ``tidy``). Such a unit is booked as it ends: one that failed
        or succeeded on its own before the cancel reached it (units often fail
        together) counts as failed or succeeded, not as cancelled. Indices with no unit
        to wait for are cancelled now."""
        self.decision.actions = [a for a in self.decision.actions if not isinstance(a, CreateUnit)]
        for task in self.tasks.values():
            done = task.finished()
            for index in list(done.gaps(0, task.status.next_index)):
                if task.live.get(index) is None:
                    task.cancelled.add(index)
            task.live = {i: child for i, child in task.live.items() if child is not None}
        self.finish(phase, reason, message)
        raise _Stop

    # -- the steps --

    def run(self) -> JobDecision:
        if self.status.phase is None:
            self.status.phase = Phase.PENDING

        try:
            self.order = validate(self.spec.tasks)
        except DagError as error:
            if not self.finished():
                self.finish(Phase.FAILED, INVALID_SPEC, str(error))
            self.summarise()
            return self.decision

        self.load_tasks()
        try:
            self.maybe_rerun()
            self.observe()
            if not self.finished():
                self.advance()
        except _Stop:
            pass
        if self.finished():  # ended for another task's sake: a clean task gets its result
            for task in self.tasks.values():
                if task.is_done and not task.failures and not task.status.aggregated:
                    self.aggregate(task)
        self.tidy()
        self.after_finish()
        self.summarise()
        return self.decision

    def load_tasks(self) -> None:
        old = {t.name: t for t in self.status.tasks}
        rerun = self.status.rerun
        for spec in self.spec.tasks:
            status = old.get(spec.name) or TaskStatus(name=spec.name)
            self.tasks[spec.name] = _Task(spec, status, self.job.metadata.name, rerun)
        self.status.tasks = [self.tasks[t.name].status for t in self.spec.tasks]

    def maybe_rerun(self) -> None:
        """spec.rerun raised on a finished WorkJob: its failed and cancelled units run
        again under new names, and those it never created run for the first time; what
        succeeded stays as it is. While spec.cancel is true the re-run waits: it would
        be cancelled as it started, its units lost."""
        wanted = self.spec.rerun
        if wanted <= self.status.rerun or not self.finished():
            return
        nothing = not any(t.failed or t.cancelled for t in self.tasks.values())
        if self.spec.cancel and not (self.status.phase is Phase.SUCCEEDED and nothing):
            message = f"re-run {wanted} waits: clear spec.cancel to re-run"
            if self.status.message != message:
                self.status.message = message
                self.event("Warning", "RerunHeld", message)
            return
        self.status.rerun = wanted
        again = 0
        for task in self.tasks.values():
            task.generation = wanted
            task.rerun = IndexSet()
            task.rerun.update(task.failed)
            task.rerun.update(task.cancelled)
            task.failed, task.cancelled = IndexSet(), IndexSet()
            task.status.rerun_next = 0
            again += len(task.rerun)
            # A failed aggregate is put together again: its spec may have been fixed.
            if task.rerun or aggregate_failed(task.status):
                task.status.aggregated = False
                task.status.result = None
                task.status.result_ref = None
                task.status.message = None
        if self.status.phase is Phase.SUCCEEDED and again == 0:
            return
        self.status.failures = []
        ended = parse_time(self.status.completion_time)
        if ended is not None:  # the time it sat finished is not time spent on the units
            self.status.held_seconds += max(0, int((self.now - ended).total_seconds()))
        self.status.phase = Phase.RUNNING
        self.status.reason = "Rerun"
        self.status.message = f"re-run {wanted}: {again} failed or cancelled units run again"
        self.status.completion_time = None
        self.event("Normal", "Rerun", self.status.message)

    def observe(self) -> None:
        for child in self.children:
            task = self.tasks.get(child.task)
            if task is not None and child.index >= 0:
                task.children.setdefault(child.index, []).append(child)

        for task in self.tasks.values():
            for index in sorted(task.children):
                for child in task.children[index]:
                    if child.name != task.expected_name(index):
                        continue  # a unit of an earlier re-run: see tidy
                    # A unit exists, so it and every index before it were created.
                    if index in task.rerun:
                        task.status.rerun_next = max(task.status.rerun_next, index + 1)
                    else:
                        task.status.next_index = max(task.status.next_index, index + 1)
                    if task.done(index):
                        continue
                    if child.finished:
                        self.record(task, child)
                    else:
                        task.live[index] = child

            for index in task.finished().gaps(0, task.status.next_index):
                if task.created(index) and index not in task.live:
                    task.live[index] = None

        for name in self.order:
            self.refresh(self.tasks[name])

    def refresh(self, task: _Task) -> None:
        """Called in topological order, so the tasks it depends on are up to date."""
        task.ready = all(self.tasks[d].is_done for d in task.spec.depends_on or [])

    def record(self, task: _Task, child: ChildUnit) -> None:
        index = child.index
        if child.phase is Phase.SUCCEEDED:
            task.succeeded.add(index)
            if child.result is not None:
                name = results_config_map(self.job, task.name, index // RESULT_CHUNK)
                self.stored.setdefault(name, {})[str(index)] = _json(child.result)
            return
        if child.phase is Phase.FAILED:
            task.failed.add(index)
        else:
            task.cancelled.add(index)
            if self.finished():
                return  # stopped by the WorkJob's own end: a consequence, not a cause
        if len(self.status.failures) < FAILURE_SAMPLE:
            self.status.failures.append(
                UnitFailure(
                    task=task.name,
                    index=index,
                    unit=child.name,
                    reason=child.reason or str(child.phase),
                    message=_trim(child.message),
                )
            )
            self.event(
                "Warning",
                "UnitFailed",
                f"unit {child.name} ended {child.phase}: {child.reason or 'no reason given'}",
            )

    def results_of(self, task: _Task) -> list[tuple[int, Any]] | None:
        """The results of the task's succeeded units in index order (None: no result).
        None when a results ConfigMap still has to be loaded."""
        merged: dict[int, dict[str, str]] = {}
        complete = True
        for chunk in _chunks_of(task.succeeded):
            name = results_config_map(self.job, task.name, chunk)
            if name not in self.inputs:
                self.decision.wanted.add(name)
                complete = False
                continue
            merged[chunk] = {**(self.inputs[name] or {}), **self.stored.get(name, {})}
        if not complete:
            return None
        results: list[tuple[int, Any]] = []
        for index in task.succeeded:
            text = merged[index // RESULT_CHUNK].get(str(index))
            results.append((index, json.loads(text) if text is not None else None))
        return results

    def load_items(self, task: _Task) -> None:
        generator = task.spec.generator
        sources = Sources(config_maps=self.inputs)
        source = generator.from_task if generator is not None else None
        if source is not None and source.reduce:
            earlier = self.tasks[source.task]
            if not earlier.is_done:
                return
            # A reducer: one unit, its input every result, mounted from the ConfigMaps.
            reducer = Generator(items=[{"task": source.task, "count": len(earlier.succeeded)}])
            task.items = Items(reducer, NO_SOURCES)
            task.status.total = 1
            return
        if source is not None:
            earlier = self.tasks[source.task]
            if not earlier.is_done:
                return
            results = self.results_of(earlier)
            if results is None:
                return
            sources = Sources(task_results={source.task: [r for _, r in results]})
        try:
            items = Items(generator, sources)
        except NotLoaded as missing:
            self.decision.wanted.add(missing.what)
            return
        except ConfigMapNotFound as error:
            task.status.message = str(error)
            self.status.message = f"task {task.name} waits: {error}"
            self.decision.wake(self.now + INPUT_RETRY)
            return
        except GeneratorError as error:
            self.stop(Phase.FAILED, INVALID_INPUT, f"task {task.name}: {error}")
        if task.status.message and task.status.message.startswith("ConfigMap "):
            task.status.message = None
        task.items = items
        task.status.total = len(items)

    def over_budget(self) -> str | None:
        """Why the failures are more than the failure policy allows, or None."""
        failures = sum(t.failures for t in self.tasks.values())
        if failures == 0:
            return None
        given = self.spec.failure_policy.max_failed
        total = sum(t.total or 0 for t in self.tasks.values())
        if isinstance(given, str) and given.endswith("%"):
            allowed = math.floor(Fraction(given[:-1]) * total / 100)
            budget = f"maxFailed {given} of {total} units allows {allowed}"
        else:
            allowed = int(given)
            budget = f"maxFailed allows {allowed}"
        if failures <= allowed:
            return None
        first = self.status.failures[0] if self.status.failures else None
        detail = f"; first: unit {first.unit} ({first.reason})" if first else ""
        return f"{failures} units failed and {budget}{detail}"

    def advance(self) -> None:
        # Items first: totals feed the failure budget and the progress.
        for name in self.order:
            task = self.tasks[name]
            self.refresh(task)
            if task.items is None and (task.total is None or not task.is_done):
                self.load_items(task)

        if self.spec.cancel:
            self.stop(Phase.CANCELLED, "Cancelled", "the WorkJob was cancelled (spec.cancel)")
        why = self.over_budget()
        if why is not None:
            self.stop(Phase.FAILED, FAILURE_BUDGET, why)

        self.create_units()

        for name in self.order:
            task = self.tasks[name]
            if task.is_done and not task.status.aggregated:
                self.aggregate(task)
            if task.is_done and not task.was_done and not aggregate_failed(task.status):
                task.was_done = True
                self.event(
                    "Normal",
                    "TaskSucceeded",
                    f"task {name}: {len(task.succeeded)} of {task.total} units succeeded",
                )

        if all(t.is_done and t.status.aggregated for t in self.tasks.values()):
            # Every unit has run, whatever the aggregates: their outcomes stand, but the
            # WorkJob did not deliver what it was asked for.
            broken = [t for t in self.tasks.values() if aggregate_failed(t.status)]
            if broken:
                more = f" (and {len(broken) - 1} more tasks)" if len(broken) > 1 else ""
                message = f"task {broken[0].name}{more}: {broken[0].status.message}"
                self.finish(Phase.FAILED, AGGREGATE_FAILED, message)
                return
            failed = sum(t.failures for t in self.tasks.values())
            total = sum(t.total or 0 for t in self.tasks.values())
            message = f"all {total} units succeeded"
            if failed:
                message = f"{total - failed} of {total} units succeeded; {failed} failed"
                message += " within the failure budget"
            self.finish(Phase.SUCCEEDED, "Succeeded", message)

    def create_units(self) -> None:
        # Units created earlier but not seen are asked for again (harmless if they exist).
        for task in self.tasks.values():
            for index, child in task.live.items():
                if child is None and task.items is not None:
                    self.create(task, index)

        if self.spec.suspend:
            self.status.reason = "Suspended"
            self.status.message = "spec.suspend is true: no new units are created"
            if not any(t.live for t in self.tasks.values()):
                self.status.phase = Phase.PENDING  # nothing runs while it is held
            return
        if self.status.reason == "Suspended":
            self.status.reason, self.status.message = None, None
            if self.status.start_time is not None:
                self.status.phase = Phase.RUNNING  # resumed, even with nothing to create

        slots = self.spec.parallelism - sum(len(t.live) for t in self.tasks.values())
        position = {name: i for i, name in enumerate(self.order)}
        ready = [t for t in self.tasks.values() if t.ready and t.items is not None]
        ready.sort(key=lambda t: (-t.spec.template.spec.priority, position[t.name]))
        for task in ready:
            room = slots
            if task.spec.parallelism is not None:
                room = min(room, task.spec.parallelism - len(task.live))
            if room <= 0:
                continue
            for index in task.candidates():
                if room <= 0:
                    break
                self.create(task, index)
                room -= 1
                slots -= 1
            if slots <= 0:
                break

    def result_inputs(self, name: str) -> list[dict[str, str]]:
        """A task's results ConfigMaps as a reducer's inputs: results/<chunk>/<index>."""
        return [
            {
                "configMap": results_config_map(self.job, name, chunk),
                "mountPath": f"{INPUTS_DIR}/results/{chunk}",
            }
            for chunk in _chunks_of(self.tasks[name].succeeded)
        ]

    def create(self, task: _Task, index: int) -> None:
        assert task.items is not None
        if index >= len(task.items):
            return
        template = task.spec.template
        try:
            spec = render_unit_spec(template.spec.dump(), task.items[index], index, task.name)
        except SubstitutionError as error:
            self.stop(Phase.FAILED, INVALID_SPEC, f"task {task.name}, unit {index}: {error}")
        source = task.spec.generator.from_task if task.spec.generator else None
        if source is not None and source.reduce:
            spec["inputs"] = [*(spec.get("inputs") or []), *self.result_inputs(source.task)]
        rerun = task.generation if index in task.rerun else 0
        meta = template.metadata
        item = task.items[index]
        try:
            own_labels = {
                k: substitute(v, item, index, task.name)
                for k, v in ((meta.labels if meta else None) or {}).items()
            }
            annotations = {
                k: substitute(v, item, index, task.name)
                for k, v in ((meta.annotations if meta else None) or {}).items()
            }
        except SubstitutionError as error:
            self.stop(Phase.FAILED, INVALID_SPEC, f"task {task.name}, unit {index}: {error}")
        labels = {
            **own_labels,
            LABEL_WORKJOB: label_value(self.job.metadata.name),
            LABEL_WORKJOB_UID: self.job.metadata.uid,
            LABEL_TASK: task.name,
            LABEL_INDEX: str(index),
            LABEL_RERUN: str(rerun),
            LABEL_MANAGED_BY: MANAGER,
        }
        name = task.expected_name(index)
        self.decision.actions.append(
            CreateUnit(task.name, index, name, labels, annotations, spec, template.spec.priority)
        )

        if index in task.rerun:
            task.status.rerun_next = max(task.status.rerun_next, index + 1)
        else:
            task.status.next_index = max(task.status.next_index, index + 1)
        task.live.setdefault(index, None)
        if self.status.start_time is None:
            self.status.start_time = self.stamp
            self.event("Normal", "Started", f"creating units, {self.spec.parallelism} at once")
        self.status.phase = Phase.RUNNING

    def aggregate(self, task: _Task) -> None:
        spec = task.spec.aggregate
        if spec is None:
            task.status.aggregated = True
            return
        results = self.results_of(task)
        if results is None:
            return
        task.status.aggregated = True
        try:
            value = aggregate(spec, [r for _, r in results], [i for i, _ in results])
        except AggregateError as error:
            task.status.message = _trim(f"{AGGREGATE_FAILURE}{error}")
            self.event("Warning", "AggregateFailed", f"task {task.name}: {error}")
            return

        text = _json(value)
        size = len(text.encode())
        if size < AGGREGATE_STATUS_LIMIT:
            task.status.result = value
            task.status.result_ref = None
            return
        names = []
        for part, piece in enumerate(split_text(text)):
            name = aggregate_config_map(self.job, task.name, part)
            self.decision.actions.append(StoreResults(name, {"result": piece}))
            names.append(name)
        task.status.result = None
        task.status.result_ref = ConfigMapRef(
            config_map=names[0], key="result", bytes=size, more=names[1:] or None
        )

    def tidy(self) -> None:
        """Results to store; units of a finished WorkJob to cancel; units of an earlier
        re-run to delete."""
        # Stored first in the action list: the caller applies them before the status.
        stores = [StoreResults(name, data) for name, data in sorted(self.stored.items())]
        self.decision.actions[:0] = stores

        finished = self.finished()
        for task in self.tasks.values():
            for index, kids in task.children.items():
                for child in kids:
                    current = child.name == task.expected_name(index)
                    if not current and index in task.rerun:
                        self.decision.actions.append(
                            DeleteUnit(child.name, f"replaced by re-run {task.generation}")
                        )
                    elif finished and not child.finished and not child.cancel_requested:
                        self.decision.actions.append(CancelUnit(child.name))
            task.save()

    def after_finish(self) -> None:
        ttl = self.spec.ttl_seconds_after_finished
        done = parse_time(self.status.completion_time)
        if not self.finished() or ttl is None or done is None:
            return
        expiry = done + timedelta(seconds=ttl)
        if self.now >= expiry:
            self.decision.actions.append(DeleteWorkJob("ttlSecondsAfterFinished"))
        else:
            self.decision.wake(expiry)

    # -- the status people read --

    def summarise(self) -> None:
        phase = Phase(self.status.phase or Phase.PENDING)
        overall: dict[str, int] = {}
        for task in self.tasks.values():
            counts = self.task_counts(task, phase)
            task.status.counts = task.status.counts.model_validate(counts)
            task.status.phase = self.task_phase(task, phase)
            for key, value in counts.items():
                overall[key] = overall.get(key, 0) + value
        self.status.counts = self.status.counts.model_validate(overall)

        c = self.status.counts
        done = c.succeeded + c.failed + c.cancelled
        self.status.progress = f"{done}/{c.total}"
        # A held WorkJob finishes when someone resumes it: no time can be promised.
        held = self.spec.suspend and not phase.finished
        self.count_held(held and phase is Phase.PENDING and self.status.start_time is not None)
        self.status.eta = self.eta(done, c.total) if not (phase.finished or held) else None
        self.status.observed_generation = self.job.metadata.generation
        self.status.conditions = self.conditions(phase)

    def task_counts(self, task: _Task, phase: Phase) -> dict[str, int]:
        counts = {
            "total": task.total or 0,
            "succeeded": len(task.succeeded),
            "failed": len(task.failed),
            "cancelled": len(task.cancelled),
            "running": 0,
            "backingOff": 0,
            "pending": 0,
            "blocked": 0,
            "notRun": 0,
        }
        by_phase = {
            Phase.RUNNING: "running",
            Phase.BACKING_OFF: "backingOff",
            Phase.BLOCKED: "blocked",
        }
        for child in task.live.values():
            key = by_phase.get(Phase(child.phase), "pending") if child and child.phase else None
            counts[key or "pending"] += 1
        rest = counts["total"] - sum(v for k, v in counts.items() if k != "total")
        if rest > 0:
            if phase in (Phase.FAILED, Phase.CANCELLED):
                counts["notRun"] += rest  # never created, and never will be: not done
            elif task.ready or phase is Phase.SUCCEEDED:
                counts["pending"] += rest
            else:
                counts["blocked"] += rest
        return counts

    def task_phase(self, task: _Task, phase: Phase) -> Phase:
        # Every unit of the task ended, and the task will not be aggregated first: a
        # WorkJob that ended for another task's sake leaves a clean task Succeeded.
        if task.is_done and (task.status.aggregated or phase.finished):
            if aggregate_failed(task.status):
                return Phase.FAILED  # its units may all have succeeded: its result did not
            failed_here = phase is Phase.FAILED and task.failures
            return Phase.FAILED if failed_here else Phase.SUCCEEDED
        if phase in (Phase.FAILED, Phase.CANCELLED):
            return phase
        if not task.ready:
            return Phase.BLOCKED
        if task.live:
            return Phase.RUNNING
        if self.spec.suspend:
            return Phase.PENDING  # held, as the WorkJob is once none of its units runs
        if task.status.next_index or task.is_done:
            return Phase.RUNNING
        return Phase.PENDING

    def count_held(self, held: bool) -> None:
        """Keep the time spent suspended with nothing running, which the ETA leaves out."""
        since = parse_time(self.status.held_since)
        if held and since is None:
            self.status.held_since = self.stamp
        elif not held and since is not None:
            self.status.held_seconds += max(0, int((self.now - since).total_seconds()))
            self.status.held_since = None

    def eta(self, done: int, total: int) -> str | None:
        """From the pace so far, counting only the time the WorkJob was not held."""
        start = parse_time(self.status.start_time)
        if start is None or done == 0 or done >= total:
            return None
        elapsed = (self.now - start).total_seconds() - self.status.held_seconds
        if elapsed <= 0:
            return None
        remaining = (total - done) * elapsed / done
        if remaining > MAX_SECONDS:
            return None  # a slow start over many units: no date worth showing (or adding)
        return format_time(self.now + timedelta(seconds=math.ceil(remaining)))

    def conditions(self, phase: Phase) -> list[Any]:
        return phase_conditions(
            self.status.conditions,
            phase,
            self.status.reason or phase.value,
            self.status.message or "",
            "UnitsRunning",
            self.stamp,
            self.job.metadata.generation,
        )
