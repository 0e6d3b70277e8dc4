"""WorkJob: a large job broken into WorkUnits by generators, and put back together."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_snake

from workunits.api.common import DNS_LABEL, MAX_SECONDS, Condition, Model, ObjectMeta
from workunits.api.workunit import Phase, WorkUnitSpec


class Range(Model):
    """Items start, start+step, ... up to but not including end."""

    start: int = Field(default=0, description="start: the first item. Default 0.")
    end: int = Field(description="end: items stop before this.")
    step: int = Field(
        default=1,
        description="step: the distance between items; negative counts down. Default 1.",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self != 0", "message": "step must not be 0"}]
        },
    )

    @field_validator("step")
    @classmethod
    def _step_not_zero(cls, step: int) -> int:
        if step == 0:
            raise ValueError("step must not be 0")
        return step


class Chunks(Model):
    """Chunks of a total size: each item is {start, end} (end exclusive), the last shorter."""

    total: int = Field(ge=0, description="total: the size to split, such as a row count.")
    size: int = Field(ge=1, description="size: the size of each chunk.")
    offset: int = Field(default=0, ge=0, description="offset: where the first chunk starts.")


class ConfigMapItems(Model):
    """Items read from a ConfigMap key holding a JSON list, or one item per line."""

    name: str = Field(min_length=1, description="name: the ConfigMap, in the WorkJob's namespace.")
    key: str = Field(min_length=1, description="key: the key holding the items.")
    format: Literal["json", "lines"] = Field(
        default="json", description="format: json (a list) or lines. Default json."
    )


class FromTask(Model):
    """Items from an earlier task's results: its units' results in index order, flattened."""

    task: str = Field(description="task: the earlier task (it must be in dependsOn).")
    flatten: bool = Field(
        default=True,
        description="flatten: a result that is a list gives one item per element. Default true.",
    )
    reduce: bool = Field(
        default=False,
        description=(
            "reduce: true runs one unit over all the task's results (a reducer) instead of "
            "one per result. The results are mounted as files, one per unit index holding "
            "its JSON, under /var/run/workunits/inputs/results/<n>/; the unit's item is "
            "{task, count}. Default false."
        ),
    )


class Generator(Model):
    """Where a task's items come from. Exactly one field is set."""

    items: list[Any] | None = Field(
        default=None,
        description="items: the items themselves (any JSON).",
        json_schema_extra={"items": {"x-kubernetes-preserve-unknown-fields": True}},
    )
    range: Range | None = Field(default=None, description="range: a numeric range.")
    chunks: Chunks | None = Field(default=None, description="chunks: chunks of a total size.")
    config_map: ConfigMapItems | None = Field(
        default=None, description="configMap: items read from a ConfigMap."
    )
    from_task: FromTask | None = Field(
        default=None, description="fromTask: the results of an earlier task."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Generator:
        given = [k for k in _SOURCES if getattr(self, to_snake(k)) is not None]
        if len(given) != 1:
            raise ValueError(_ONE_GENERATOR)
        return self


# The sources are optional fields that exclude each other, so "exactly one" is one
# property: the API server then names the generator, where a oneOf names no field. (A
# CEL rule could say more, but it cannot see ``items``: a list of any JSON has no CEL
# type.)
_SOURCES = ("items", "range", "chunks", "configMap", "fromTask")
_ONE_GENERATOR = "set exactly one of " + ", ".join(_SOURCES)
Generator.model_config["json_schema_extra"] = {"minProperties": 1, "maxProperties": 1}


class AggregateOp(StrEnum):
    COLLECT = "collect"
    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    MEAN = "mean"
    CONCAT = "concat"
    MERGE = "merge"


class Aggregate(Model):
    """How a task's results are put together into its status."""

    op: AggregateOp = Field(
        default=AggregateOp.COLLECT,
        description=(
            "op: collect, count, sum, min, max, mean, concat or merge, over the results of "
            "the task's succeeded units (failed, cancelled and never-run units add nothing). "
            "collect lists one entry per succeeded unit in index order, null for a unit "
            "that reported no result; count counts the succeeded units whose result (or "
            "field) is not null, not all units; the other ops skip null results."
        ),
    )
    field: str | None = Field(
        default=None,
        description="field: for results that are objects, the key to aggregate (a.b for nesting).",
    )


class UnitTemplateMeta(Model):
    labels: dict[str, str] | None = Field(default=None, description="labels of each unit.")
    annotations: dict[str, str] | None = Field(
        default=None, description="annotations of each unit."
    )


class UnitTemplate(Model):
    """The WorkUnit each item becomes. ${item}, ${item.key}, ${index} and ${task} are
    substituted in image, command, args, env values, parameters and a full template."""

    metadata: UnitTemplateMeta | None = Field(default=None, description="metadata of units.")
    spec: WorkUnitSpec = Field(description="spec: the unit's spec.")


class Task(Model):
    """One step of the WorkJob: a template fanned out over a generator's items."""

    name: str = Field(
        description="name: the task's name, unique in the WorkJob.",
        pattern=DNS_LABEL,
        max_length=30,
    )
    generator: Generator | None = Field(
        default=None, description="generator: the items. Unset: a single unit (item null)."
    )
    template: UnitTemplate = Field(description="template: the WorkUnit each item becomes.")
    depends_on: list[str] | None = Field(
        default=None, description="dependsOn: tasks that must finish first."
    )
    parallelism: int | None = Field(
        default=None, ge=1, description="parallelism: most units of this task running at once."
    )
    aggregate: Aggregate | None = Field(
        default=None, description="aggregate: how the task's results are put together."
    )


class FailurePolicy(Model):
    """When the WorkJob gives up."""

    max_failed: int | str = Field(
        default=0,
        description=(
            "maxFailed: failed units tolerated, a count (3) or a percentage of all units "
            '("5%"). One more fails the WorkJob and cancels the rest. Default 0.'
        ),
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$",
            "minimum": 0,
        },
    )


class WorkJobSpec(Model):
    tasks: list[Task] = Field(
        min_length=1, max_length=64, description="tasks: the steps, a DAG by dependsOn."
    )
    parallelism: int = Field(
        default=10, ge=1, le=100000, description="parallelism: most units running at once."
    )
    failure_policy: FailurePolicy = Field(
        default_factory=FailurePolicy,
        description="failurePolicy: when the WorkJob fails.",
        json_schema_extra={"default": {}},
    )
    rerun: int = Field(
        default=0,
        ge=0,
        description=(
            "rerun: raise it to run the failed, cancelled and never-run units of a finished "
            "WorkJob again. It waits while spec.cancel is true."
        ),
    )
    suspend: bool = Field(default=False, description="suspend: true holds new units.")
    cancel: bool = Field(default=False, description="cancel: true cancels every unit.")
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SECONDS,
        description="ttlSecondsAfterFinished: delete it this long after.",
    )


class Counts(Model):
    """Units by phase; units not created yet count as pending (or blocked), and as notRun
    once the WorkJob has ended without them."""

    total: int = Field(default=0, description="total: units in all (known so far).")
    pending: int = Field(default=0, description="pending: units waiting to run.")
    blocked: int = Field(default=0, description="blocked: units of tasks waiting for others.")
    running: int = Field(default=0, description="running: units with a running attempt.")
    backing_off: int = Field(default=0, description="backingOff: units waiting to retry.")
    succeeded: int = Field(default=0, description="succeeded: units that succeeded.")
    failed: int = Field(default=0, description="failed: units that failed.")
    cancelled: int = Field(default=0, description="cancelled: units cancelled.")
    not_run: int = Field(
        default=0,
        description=(
            "notRun: units never created because the WorkJob ended first (cancelled, or "
            "failed): not counted as done in progress."
        ),
    )


class ConfigMapRef(Model):
    """Where a text too large for the status is kept: one ConfigMap, or several in order."""

    config_map: str = Field(description="configMap: the ConfigMap's name.")
    key: str = Field(description="key: the key.")
    bytes: int | None = Field(default=None, description="bytes: the text's size.")
    more: list[str] | None = Field(
        default=None,
        description=(
            "more: further ConfigMaps (same key) holding the rest of the text, in order, "
            "when it is too large for one."
        ),
    )


# Index ranges [[start, end], ...], end exclusive, sorted and disjoint.
IndexRanges = list[list[int]]


class TaskStatus(Model):
    """One task's state, kept small: counts, index ranges, the aggregate or its reference."""

    name: str = Field(description="name: the task's name.")
    phase: Phase | None = Field(
        default=None,
        description=(
            "phase: where the task is. Failed when its aggregate failed, even with every "
            "unit succeeded."
        ),
    )
    message: str | None = Field(
        default=None, description="message: why it waits, or why its aggregate failed."
    )
    counts: Counts = Field(default_factory=Counts, description="counts: units by phase.")
    total: int | None = Field(
        default=None, description="total: the task's items, once known (fromTask: later)."
    )
    next_index: int = Field(
        default=0, description="nextIndex: units below this index have been created."
    )
    succeeded: IndexRanges = Field(
        default_factory=list,
        description="succeeded: indices of units seen succeed, as [start, end) ranges.",
    )
    failed: IndexRanges = Field(
        default_factory=list,
        description="failed: indices of units seen fail, as [start, end) ranges.",
    )
    cancelled: IndexRanges = Field(
        default_factory=list,
        description="cancelled: indices of units cancelled, as [start, end) ranges.",
    )
    rerun_indices: IndexRanges = Field(
        default_factory=list,
        description=(
            "rerunIndices: indices re-run in the current re-run (their units are named "
            "with -r<rerun>), as [start, end) ranges."
        ),
    )
    rerun_next: int = Field(
        default=0, description="rerunNext: re-run indices below this have been re-created."
    )
    aggregated: bool = Field(
        default=False, description="aggregated: the aggregate is final (or has failed)."
    )
    result: Any = Field(
        default=None,
        description="result: the aggregate, when its JSON is under 4 KiB.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    result_ref: ConfigMapRef | None = Field(
        default=None, description="resultRef: where a larger aggregate is kept."
    )


class UnitFailure(Model):
    """A failed unit, in the bounded sample of failures."""

    task: str = Field(description="task: the unit's task.")
    index: int = Field(description="index: the unit's index in its task.")
    unit: str = Field(description="unit: the WorkUnit's name.")
    reason: str | None = Field(default=None, description="reason: why it failed.")
    message: str | None = Field(default=None, description="message: details for people.")


class WorkJobStatus(Model):
    """What the operator knows of the WorkJob; small at any number of units."""

    phase: Phase | None = Field(
        default=None,
        description=(
            "phase: where the WorkJob is. Pending before its first unit, and while "
            "spec.suspend holds it with none of its units running; Running while units "
            "run, suspended or not (reason Suspended: units already started go on, no "
            "new one starts); then Succeeded, Failed or Cancelled. A task's phase "
            "follows the same rule."
        ),
    )
    reason: str | None = Field(default=None, description="reason: the last reason.")
    message: str | None = Field(default=None, description="message: the last message.")
    progress: str | None = Field(default=None, description="progress: done/total.")
    eta: str | None = Field(default=None, description="eta: when it is expected to finish.")
    counts: Counts = Field(default_factory=Counts, description="counts: units by phase.")
    tasks: list[TaskStatus] = Field(default_factory=list, description="tasks: each task.")
    failures: list[UnitFailure] = Field(
        default_factory=list,
        description=(
            "failures: the first units (at most 20) that failed, or were cancelled before "
            "the WorkJob ended, with their reasons."
        ),
    )
    start_time: str | None = Field(default=None, description="startTime: the first unit.")
    completion_time: str | None = Field(
        default=None, description="completionTime: when it finished."
    )
    held_since: str | None = Field(
        default=None,
        description=(
            "heldSince: since when spec.suspend holds the started WorkJob with none of its "
            "units running; unset otherwise."
        ),
    )
    held_seconds: int = Field(
        default=0,
        description=(
            "heldSeconds: the seconds, before heldSince, that the started WorkJob did no "
            "work: held with none of its units running, or finished before a re-run. The "
            "ETA leaves them out, so it follows the pace while units run."
        ),
    )
    rerun: int = Field(default=0, description="rerun: the spec.rerun last acted on.")
    conditions: list[Condition] = Field(
        default_factory=list, description="conditions: Succeeded, Failed, Running, Ready..."
    )
    observed_generation: int | None = Field(
        default=None, description="observedGeneration: the generation last reconciled."
    )


class WorkJob(Model):
    api_version: str = "workunits.io/v1alpha1"
    kind: str = "WorkJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkJobSpec
    status: WorkJobStatus = Field(default_factory=WorkJobStatus)
