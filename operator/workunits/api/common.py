"""Building blocks shared by both resources: the base model, quantities, conditions.

Every model serialises to camelCase JSON, the way Kubernetes objects are written.
Schema details that pydantic cannot say on its own (Kubernetes' ``x-kubernetes-*``
extensions, CEL rules) are attached with ``json_schema_extra`` and carried into the
CRD by :mod:`workunits.api.crd`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic.alias_generators import to_camel

# The grammar Kubernetes accepts for a resource quantity ("500m", "1Gi", "0.5", "1e3"),
# without a sign: no resource is negative.
QUANTITY_PATTERN = (
    r"^[+]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

# A quantity is a string or a plain number, as in a pod spec: 0.5, "500m", 1, "1Gi".
# A structural schema cannot say "number or string" (int-or-string refuses 0.5), so the
# node keeps any scalar; ``pattern`` checks strings only and ``minimum`` numbers only,
# and the rest refuse booleans, objects and lists. The API server names the field.
Quantity = Annotated[
    str | int | float,
    WithJsonSchema(
        {
            "x-kubernetes-preserve-unknown-fields": True,
            "pattern": QUANTITY_PATTERN,
            "minimum": 0,
            "maxProperties": 0,
            "maxItems": 0,
            "not": {"enum": [True, False]},
        }
    ),
]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

# The longest time any duration field may say: ten years. Past it a time is no longer
# a plan but a typo, and the operator's date arithmetic (capped at the year 9999) must
# never see a value it cannot add to a date.
MAX_SECONDS = 10 * 365 * 24 * 3600


class Model(BaseModel):
    """Base of every resource model: camelCase JSON, unknown keys ignored on read."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        validate_default=True,
    )

    def dump(self) -> dict[str, Any]:
        """The JSON form Kubernetes stores: camelCase, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def clone(self) -> Self:
        """A deep copy, made by the validator: several times quicker than
        ``model_copy(deep=True)``, which copies field by field in Python."""
        return self.model_validate(self.model_dump())


def preserved(description: str) -> Any:
    """A free-form object field: stored as given, validated by Kubernetes downstream."""
    return Field(
        default=None,
        description=description,
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )


class EnvVar(Model):
    """One environment variable of the unit's container."""

    name: str = Field(description="name of the variable.", pattern=ENV_NAME, max_length=256)
    value: str | None = Field(default=None, description="value of the variable.")
    value_from: dict[str, Any] | None = preserved(
        "valueFrom: a source for the value, as in a container's env (secretKeyRef, ...)."
    )


class Resources(Model):
    """Compute resources of the unit's container, as in a pod spec."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="requests: minimum resources, such as cpu: 500m."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="limits: maximum resources, such as memory: 1Gi."
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """A condition in the standard Kubernetes shape, for `kubectl wait` and GitOps tools."""

    type: str = Field(description="type of the condition, such as Succeeded or Failed.")
    status: ConditionStatus = Field(description="status: True, False or Unknown.")
    reason: str = Field(default="", description="reason: a CamelCase word for machines.")
    message: str = Field(default="", description="message: a sentence for people.")
    last_transition_time: str | None = Field(
        default=None, description="lastTransitionTime: when status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="observedGeneration: the generation this was set for."
    )


class ObjectMeta(Model):
    """The parts of metadata the operator reads."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A field's path in the object, written as the API server writes it:
    ``spec.tasks[0].generator``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def validation_message(exc: ValidationError) -> str:
    """The first thing wrong with an object, for its status: the field, then why."""
    first = exc.errors()[0]
    why = str(first.get("msg"))
    if first.get("type") == "value_error":
        why = why.removeprefix("Value error, ")  # our validators' own words
    where = field_path(tuple(first.get("loc", ())))
    return f"{where}: {why}" if where else why
