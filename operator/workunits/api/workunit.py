"""WorkUnit: one self-contained piece of work, run as one Kubernetes Job per attempt."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, StringConstraints, model_validator

from workunits.api.common import (
    DNS_SUBDOMAIN,
    ENV_NAME,
    MAX_SECONDS,
    Condition,
    EnvVar,
    Model,
    ObjectMeta,
    Quantity,
    Resources,
)


class Phase(StrEnum):
    """Where a unit is in its life. The last three are final."""

    PENDING = "Pending"
    BLOCKED = "Blocked"
    RUNNING = "Running"
    BACKING_OFF = "BackingOff"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


class Action(StrEnum):
    """What a failed attempt leads to."""

    RETRY = "Retry"  # another attempt, if the budget allows
    FAIL = "Fail"  # the unit fails at once
    IGNORE = "Ignore"  # another attempt that does not spend the budget


class Backoff(Model):
    """The wait before each new attempt: initial * factor^(n-1), capped, with jitter."""

    initial_delay_seconds: float = Field(
        default=10,
        ge=0,
        le=86400,
        description="initialDelaySeconds: the wait before the second attempt. Default 10.",
    )
    factor: float = Field(
        default=2.0,
        ge=1,
        le=100,
        description="factor: each wait is the previous one times this. Default 2.",
    )
    max_delay_seconds: float = Field(
        default=600,
        ge=0,
        le=604800,
        description="maxDelaySeconds: no wait is longer than this. Default 600.",
    )
    jitter: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description=(
            "jitter: each wait is shortened by a random fraction up to this, so units that "
            "failed together do not retry together. 0 disables it. Default 0.2."
        ),
    )


class ExitCodes(Model):
    """A set of exit codes a rule matches."""

    operator: Literal["In", "NotIn"] = Field(
        default="In", description="operator: In or NotIn the values. Default In."
    )
    values: list[int] = Field(
        description="values: the exit codes, one to 255 of them.",
        min_length=1,
        max_length=255,
        json_schema_extra={"items": {"type": "integer", "minimum": 0, "maximum": 255}},
    )


class RetryRule(Model):
    """Decides what a failed attempt leads to. A rule matches when all its criteria do."""

    action: Action = Field(
        description="action: Retry, Fail (the unit at once) or Ignore (another attempt that "
        "does not spend maxAttempts: a failure that always comes back is retried until "
        "deadlineSeconds, so set one)."
    )
    on_exit_codes: ExitCodes | None = Field(
        default=None, description="onExitCodes: match the container's exit code."
    )
    on_reasons: list[str] | None = Field(
        default=None,
        max_length=32,
        description=(
            "onReasons: match the attempt's reason: the container's termination reason "
            "(OOMKilled, Error, ...), or the operator's (DeadlineExceeded, StartTimeout, "
            "JobDeleted, ImagePullBackOff and other waiting reasons)."
        ),
    )
    on_pod_conditions: list[str] | None = Field(
        default=None,
        max_length=16,
        description="onPodConditions: match a condition type that is True on the pod.",
    )


class RetryPolicy(Model):
    """The user's retry policy. Each field has a default; a partial policy keeps the rest."""

    max_attempts: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="maxAttempts: attempts in all, the first included. Default 3.",
    )
    backoff: Backoff = Field(
        default_factory=Backoff,
        description="backoff: the waits between attempts.",
        json_schema_extra={"default": {}},
    )
    rules: list[RetryRule] = Field(
        default_factory=list,
        max_length=32,
        description="rules: checked in order; the first that matches decides.",
        json_schema_extra={"default": []},
    )
    default_action: Action = Field(
        default=Action.RETRY,
        description="defaultAction: what a failure no rule matches leads to. Default Retry.",
    )
    oom_memory_factor: float | None = Field(
        default=None,
        ge=1,
        le=16,
        description=(
            "oomMemoryFactor: after an OOMKilled attempt, the next one gets its memory "
            "request and limit times this. Unset: memory stays as it is."
        ),
    )
    oom_memory_max: Quantity | None = Field(
        default=None, description="oomMemoryMax: the ceiling for oomMemoryFactor's growth."
    )


INPUTS_DIR = "/var/run/workunits/inputs"

# A pod template is kept as given (Kubernetes validates it in full when the Job is
# made), but its shape is checked at apply: a spec with at least one container.
_FREE: dict[str, JsonValue] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_POD_TEMPLATE_SCHEMA: dict[str, JsonValue] = {
    **_FREE,
    "required": ["spec"],
    "properties": {
        "metadata": dict(_FREE),
        "spec": {
            **_FREE,
            "required": ["containers"],
            "properties": {
                "containers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {**_FREE, "required": ["name"]},
                }
            },
        },
    },
}

# Variables the operator gives every unit's container: parameters may not take them.
RESERVED_PARAMETERS = frozenset(
    {"WORKUNIT_NAME", "WORKUNIT_NAMESPACE", "WORKUNIT_ATTEMPT", "WORKUNIT_PARAMETERS"}
)


class InputSource(Model):
    """A ConfigMap or a Secret of the unit's namespace, mounted as files (one per key)."""

    config_map: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=253,
        description="configMap: the ConfigMap's name.",
    )
    secret: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=253,
        description="secret: the Secret's name.",
    )
    mount_path: str | None = Field(
        default=None,
        pattern=r"^/",
        max_length=1024,
        description=f"mountPath: where its files appear. Default {INPUTS_DIR}/<name>.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> InputSource:
        if (self.config_map is None) == (self.secret is None):
            raise ValueError(_ONE_INPUT["message"])
        return self

    @property
    def name(self) -> str:
        return self.config_map or self.secret or ""

    @property
    def path(self) -> str:
        return self.mount_path or f"{INPUTS_DIR}/{self.name}"


# A CEL rule rather than oneOf: the API server then names the input and says what is
# wrong, where a oneOf only says that it matched none, or two, of its alternatives.
_ONE_INPUT: dict[str, JsonValue] = {
    "rule": "has(self.configMap) != has(self.secret)",
    "message": "set exactly one of configMap, secret",
}
InputSource.model_config["json_schema_extra"] = {"x-kubernetes-validations": [_ONE_INPUT]}


class WorkUnitSpec(Model):
    """What to run, with which inputs, and how to retry it."""

    image: str | None = Field(
        default=None, min_length=1, description="image: the container image to run."
    )
    command: list[str] | None = Field(default=None, description="command: the entrypoint.")
    args: list[str] | None = Field(default=None, description="args: arguments to the command.")
    env: list[EnvVar] | None = Field(
        default=None, description="env: environment variables of the container."
    )
    resources: Resources | None = Field(
        default=None, description="resources: requests and limits of the container."
    )
    template: dict[str, Any] | None = Field(
        default=None,
        description=(
            "template: a full pod template, instead of image/command/args/env/resources. "
            "Its first container runs the work and reports the result."
        ),
        json_schema_extra=_POD_TEMPLATE_SCHEMA,
    )
    parameters: dict[Annotated[str, StringConstraints(pattern=ENV_NAME)], str] | None = Field(
        default=None,
        description=(
            "parameters: the unit's inputs. Each reaches the container as an environment "
            "variable of the same name, and all of them as JSON in WORKUNIT_PARAMETERS."
        ),
        json_schema_extra={"maxProperties": 256},
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description="retry: when and how failed attempts are retried.",
        json_schema_extra={"default": {}},
    )
    attempt_timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SECONDS,
        description="attemptTimeoutSeconds: an attempt running longer fails (DeadlineExceeded).",
    )
    deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SECONDS,
        description=(
            "deadlineSeconds: the unit's overall time, from its creation. No attempt starts "
            "after it, and a running one is stopped at it."
        ),
    )
    start_timeout_seconds: int = Field(
        default=300,
        ge=1,
        le=MAX_SECONDS,
        description=(
            "startTimeoutSeconds: an attempt whose pod has not started running by then fails "
            "with the pod's waiting reason (image pull, missing Secret...). Default 300."
        ),
    )
    depends_on: list[str] | None = Field(
        default=None,
        max_length=256,
        description="dependsOn: WorkUnits in this namespace that must succeed first.",
        json_schema_extra={"items": {"type": "string", "pattern": DNS_SUBDOMAIN}},
    )
    priority: int = Field(
        default=0,
        ge=-1000000,
        le=1000000,
        description="priority: higher runs first when the operator has a backlog. Default 0.",
    )
    priority_class_name: str | None = Field(
        default=None, description="priorityClassName: given to the pod, for the scheduler."
    )
    suspend: bool = Field(
        default=False, description="suspend: true holds new attempts; a running one goes on."
    )
    cancel: bool = Field(
        default=False, description="cancel: true stops the unit for good (phase Cancelled)."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SECONDS,
        description="ttlSecondsAfterFinished: delete the unit this long after it finished.",
    )
    service_account_name: str | None = Field(
        default=None, description="serviceAccountName: the pod's service account."
    )
    inputs: list[InputSource] | None = Field(
        default=None,
        max_length=64,
        description=(
            "inputs: ConfigMaps and Secrets mounted read-only into the unit's container, "
            "each under /var/run/workunits/inputs/<name> unless mountPath says otherwise. "
            "Large inputs travel this way, never through env or args."
        ),
    )

    @model_validator(mode="after")
    def _what_to_run(self) -> WorkUnitSpec:
        if (self.image is None) == (self.template is None):
            raise ValueError("exactly one of spec.image or spec.template is required")
        if self.template is not None:
            given = [f for f in _SHORTHAND if getattr(self, f) is not None]
            if given:
                raise ValueError(
                    f"spec.{given[0]} cannot be set with spec.template: "
                    "put it in the template's container"
                )
            spec = self.template.get("spec")
            containers = spec.get("containers") if isinstance(spec, dict) else None
            if not containers or not all(isinstance(c, dict) for c in containers):
                raise ValueError("spec.template.spec.containers must list at least one container")
        params = set(self.parameters or {})
        reserved = sorted(params & RESERVED_PARAMETERS)
        if reserved:
            raise ValueError(f"spec.parameters.{reserved[0]} is set by the operator")
        clash = sorted(params & {e.name for e in self.env or []})
        if clash:
            raise ValueError(f"spec.parameters.{clash[0]} is also set in spec.env: keep one")
        return self


_SHORTHAND = ("command", "args", "env", "resources")
_RUN_RULE: dict[str, JsonValue] = {
    "rule": "has(self.image) != has(self.template)",
    "message": "exactly one of spec.image or spec.template is required",
}
_TEMPLATE_RULE: dict[str, JsonValue] = {
    "rule": "!has(self.template) || !(" + " || ".join(f"has(self.{f})" for f in _SHORTHAND) + ")",
    "message": "spec.command, args, env and resources cannot be set with spec.template: "
    "put them in the template's container",
}
WorkUnitSpec.model_config["json_schema_extra"] = {
    "x-kubernetes-validations": [_RUN_RULE, _TEMPLATE_RULE]
}


class AttemptRecord(Model):
    """One attempt, as kept in the bounded history."""

    attempt: int = Field(description="attempt: its number, from 1.")
    job_name: str = Field(description="jobName: the Job that ran it.")
    start_time: str | None = Field(default=None, description="startTime: when it started.")
    completion_time: str | None = Field(default=None, description="completionTime: when it ended.")
    outcome: str | None = Field(
        default=None, description="outcome: Running, Succeeded, Failed or Cancelled."
    )
    exit_code: int | None = Field(default=None, description="exitCode: the container's.")
    reason: str | None = Field(default=None, description="reason: why it ended that way.")
    message: str | None = Field(default=None, description="message: details for people.")
    action: str | None = Field(
        default=None,
        description=(
            "action: what a failure led to: Retry, Ignore, or Fail (the unit failed with it)."
        ),
    )
    action_reason: str | None = Field(
        default=None,
        description=(
            "actionReason: why the action is Fail when the retry policy said otherwise: "
            "NoAttemptsLeft (maxAttempts reached) or PastDeadline (the next attempt would "
            "start after deadlineSeconds)."
        ),
    )
    disruptions: int | None = Field(
        default=None, description="disruptions: pods replaced after eviction or node loss."
    )


class ResultRef(Model):
    """Where a result too large for the status is kept."""

    config_map: str = Field(description="configMap: the ConfigMap's name.")
    key: str = Field(description="key: the key holding the result.")
    bytes: int = Field(description="bytes: the result's size.")


class WorkUnitStatus(Model):
    """What the operator knows of the unit; everything it must remember lives here."""

    phase: Phase | None = Field(default=None, description="phase: where the unit is.")
    reason: str | None = Field(default=None, description="reason: the last reason.")
    message: str | None = Field(default=None, description="message: the last message.")
    attempts: int = Field(default=0, description="attempts: Jobs created for the unit.")
    failed_attempts: int = Field(
        default=0,
        description="failedAttempts: failed attempts that spent the retry budget (not Ignored).",
    )
    disruptions: int = Field(
        default=0, description="disruptions: pods replaced after eviction, preemption, node loss."
    )
    job_name: str | None = Field(default=None, description="jobName: the latest attempt's Job.")
    start_time: str | None = Field(default=None, description="startTime: the first start.")
    completion_time: str | None = Field(
        default=None, description="completionTime: when the unit finished."
    )
    next_attempt_at: str | None = Field(
        default=None, description="nextAttemptAt: when the next attempt starts (BackingOff)."
    )
    memory: str | None = Field(
        default=None, description="memory: the memory the next attempt asks for, after OOM."
    )
    history: list[AttemptRecord] = Field(
        default_factory=list, description="history: the latest attempts, oldest first, bounded."
    )
    result: Any = Field(
        default=None,
        description="result: the container's termination message, as JSON when it parses.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    result_ref: ResultRef | None = Field(
        default=None, description="resultRef: where a result too large for status is kept."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="conditions: Succeeded, Failed, Running, Ready..."
    )
    observed_generation: int | None = Field(
        default=None, description="observedGeneration: the generation last reconciled."
    )


class WorkUnit(Model):
    """A WorkUnit object as read from the API server."""

    api_version: str = "workunits.io/v1alpha1"
    kind: str = "WorkUnit"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkUnitSpec
    status: WorkUnitStatus = Field(default_factory=WorkUnitStatus)
