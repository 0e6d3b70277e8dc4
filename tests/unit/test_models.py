"""The models: what they accept, refuse, and default."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from workunits.api.common import validation_message
from workunits.api.workjob import Generator, WorkJob, WorkJobSpec
from workunits.api.workunit import WorkUnit, WorkUnitSpec, WorkUnitStatus
from workunits.core import quantity


def test_a_spec_needs_something_to_run() -> None:
    with pytest.raises(ValidationError, match=r"exactly one of spec\.image or spec\.template"):
        WorkUnitSpec()


@pytest.mark.parametrize("field", ["command", "args", "env", "resources"])
def test_shorthand_fields_do_not_go_with_a_template(field: str) -> None:
    template = {"spec": {"containers": [{"name": "work", "image": "x"}]}}
    value = {"resources": {"limits": {"memory": "1Gi"}}, "env": [{"name": "A", "value": "1"}]}
    with pytest.raises(ValidationError, match=rf"spec\.{field} cannot be set with spec\.template"):
        WorkUnitSpec.model_validate({"template": template, field: value.get(field, ["x"])})


def test_camel_case_in_and_out() -> None:
    spec = WorkUnitSpec.model_validate(
        {"image": "x", "attemptTimeoutSeconds": 5, "dependsOn": ["a"]}
    )
    dumped = spec.dump()
    assert dumped["attemptTimeoutSeconds"] == 5 and dumped["dependsOn"] == ["a"]


@pytest.mark.parametrize("value", [0.5, "500m", 1, "1Gi", "1e3", "2.5Gi"])
def test_quantities_are_accepted_as_kubernetes_does(value: object) -> None:
    # C23
    WorkUnitSpec.model_validate({"image": "x", "resources": {"requests": {"cpu": value}}})


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1Gi", 2**30),
        ("500m", 0.5),
        ("0.5", 0.5),
        ("1e3", 1000),
        ("128Mi", 128 * 2**20),
        ("2k", 2000),
    ],
)
def test_quantity_parsing(text: str, amount: float) -> None:
    assert float(quantity.parse(text)) == pytest.approx(amount)


def test_quantity_parsing_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        quantity.parse("abc")


def test_generator_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Generator.model_validate({"items": [1], "range": {"end": 3}})
    with pytest.raises(ValidationError, match="exactly one"):
        Generator.model_validate({})


def test_workjob_needs_a_task() -> None:
    with pytest.raises(ValidationError):
        WorkJobSpec.model_validate({"tasks": []})


def test_an_input_is_exactly_one_source() -> None:
    from workunits.api.workunit import InputSource

    with pytest.raises(ValidationError, match="set exactly one of configMap, secret"):
        InputSource.model_validate({"configMap": "a", "secret": "b"})
    with pytest.raises(ValidationError, match="set exactly one of configMap, secret"):
        InputSource.model_validate({})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"image": "x", "template": {"spec": {"containers": [{"name": "a"}]}}}, "exactly one"),
        ({"template": {"spec": 42}}, "at least one container"),
        ({"template": {"spec": {"containers": []}}}, "at least one container"),
        ({"image": "x", "parameters": {"WORKUNIT_NAME": "spoof"}}, "set by the operator"),
        (
            {"image": "x", "parameters": {"X": "a"}, "env": [{"name": "X", "value": "b"}]},
            "also set in spec.env",
        ),
        ({"image": "x", "parameters": {"bad name": "a"}}, "String should match pattern"),
    ],
    ids=[
        "image-and-template",
        "spec-not-an-object",
        "no-container",
        "reserved-parameter",
        "parameter-and-env",
        "parameter-name",
    ],
)
def test_specs_the_operator_refuses(spec: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=message):
        WorkUnitSpec.model_validate(spec)


def test_workjob_units_may_carry_their_item_and_index() -> None:
    WorkUnitSpec.model_validate(
        {"image": "x", "parameters": {"WORKUNIT_ITEM": "1", "WORKUNIT_INDEX": "0"}}
    )


def test_a_clone_is_equal_and_shares_nothing() -> None:
    status = WorkUnitStatus.model_validate(
        {
            "phase": "Running",
            "attempts": 1,
            "history": [{"attempt": 1, "jobName": "u-1", "action": "Run"}],
            "conditions": [{"type": "Running", "status": "True", "reason": "Started"}],
        }
    )
    clone = status.clone()
    assert clone == status and clone is not status
    clone.history[0].job_name = "u-2"
    clone.conditions.append(clone.conditions[0])
    assert status.history[0].job_name == "u-1" and len(status.conditions) == 1


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        pytest.param(
            WorkUnit,
            {"spec": {"image": "x", "inputs": [{"configMap": "a", "secret": "b"}]}},
            "spec.inputs[0]: set exactly one of configMap, secret",
            id="input-with-two-sources",
        ),
        pytest.param(
            WorkJob,
            {
                "spec": {
                    "tasks": [
                        {"name": "a", "template": {"spec": {"image": "x"}}},
                        {
                            "name": "b",
                            "generator": {"items": [1], "range": {"end": 3}},
                            "template": {"spec": {"image": "x"}},
                        },
                    ]
                }
            },
            "spec.tasks[1].generator: set exactly one of items, range, chunks, configMap, fromTask",
            id="generator-with-two-kinds",
        ),
        pytest.param(
            WorkUnit,
            {"spec": {"image": "x", "retry": {"maxAttempts": 0}}},
            "spec.retry.maxAttempts: Input should be greater than or equal to 1",
            id="below-minimum",
        ),
    ],
)
def test_the_operator_names_the_field_it_refuses(
    model: type[BaseModel], body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert validation_message(refused.value) == message


DURATIONS = [
    "attemptTimeoutSeconds",
    "deadlineSeconds",
    "startTimeoutSeconds",
    "ttlSecondsAfterFinished",
]


@pytest.mark.parametrize("value", [10**12, 9999999999999999], ids=["1e12", "16-nines"])
@pytest.mark.parametrize("field", DURATIONS)
def test_a_duration_past_ten_years_is_refused_naming_it(field: str, value: int) -> None:
    # Such a value once passed, then broke every reconcile of its unit in date arithmetic.
    with pytest.raises(ValidationError) as caught:
        WorkUnit.model_validate({"spec": {"image": "x", field: value}})
    assert validation_message(caught.value).startswith(f"spec.{field}: "), caught.value
    WorkUnitSpec.model_validate({"image": "x", field: 10 * 365 * 24 * 3600})


@pytest.mark.parametrize("field", DURATIONS)
def test_a_task_templates_duration_past_ten_years_is_refused_naming_it(field: str) -> None:
    task = {"name": "t", "template": {"spec": {"image": "x", field: 10**12}}}
    with pytest.raises(ValidationError) as caught:
        WorkJob.model_validate({"spec": {"tasks": [task]}})
    where = f"spec.tasks[0].template.spec.{field}: "
    assert validation_message(caught.value).startswith(where), caught.value


def test_a_workjobs_ttl_past_ten_years_is_refused() -> None:
    spec = {"tasks": [{"name": "t", "template": {"spec": {"image": "x"}}}]}
    with pytest.raises(ValidationError, match="ttlSecondsAfterFinished"):
        WorkJobSpec.model_validate({**spec, "ttlSecondsAfterFinished": 10**12})
