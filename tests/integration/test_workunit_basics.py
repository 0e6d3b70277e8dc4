"""A WorkUnit on the real API server and Job controller: the walking skeleton."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.kube import apply, get, kubectl, unit_jobs, unit_phase, workunit


def test_a_unit_runs_as_a_job_and_succeeds_with_its_result(ns: str) -> None:
    apply(workunit("hello", pod_annotations={"sim.workunits.io/message": '{"rows": 42}'}), ns)
    unit = unit_phase("hello", ns, ("Succeeded",))

    jobs = unit_jobs("hello", ns)
    assert len(jobs) == 1
    job = jobs[0]
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "WorkUnit" and owner["uid"] == unit["metadata"]["uid"]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["podReplacementPolicy"] == "Failed"  # C15

    status = unit["status"]
    assert status["result"] == {"rows": 42}
    assert status["attempts"] == 1 and status["jobName"] == job["metadata"]["name"]
    assert status["startTime"] and status["completionTime"]
    assert status["observedGeneration"] == unit["metadata"]["generation"]
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True"


def test_kubectl_wait_works_on_the_conditions(ns: str) -> None:
    apply(workunit("waited"), ns)
    result = kubectl(
        "wait", "-n", ns, "--for=condition=Succeeded", "workunit/waited", "--timeout=60s"
    )
    assert "condition met" in result.stdout


def test_a_scripted_failure_ends_failed_with_exit_code_and_reason(ns: str) -> None:
    apply(
        workunit(
            "broken",
            {"retry": {"maxAttempts": 1}},
            pod_labels={"sim.workunits.io/outcome": "fail"},
            pod_annotations={"sim.workunits.io/exit-code": "3", "sim.workunits.io/reason": "Error"},
        ),
        ns,
    )
    status = unit_phase("broken", ns, ("Failed",))["status"]
    assert status["reason"] == "Error"
    assert status["history"][-1]["exitCode"] == 3
    assert "exit code 3" in status["message"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "Error"


def test_oom_killed_is_reported_as_such(ns: str) -> None:
    apply(
        workunit(
            "oom",
            {"retry": {"maxAttempts": 1}},
            pod_labels={"sim.workunits.io/outcome": "fail"},
            pod_annotations={
                "sim.workunits.io/exit-code": "137",
                "sim.workunits.io/reason": "OOMKilled",
            },
        ),
        ns,
    )
    status = unit_phase("oom", ns, ("Failed",))["status"]
    assert status["reason"] == "OOMKilled" and status["history"][-1]["exitCode"] == 137


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("image", 5, "spec.image"),
        ("command", "echo hi", "spec.command"),
        ("retry", {"maxAttempts": "three"}, "spec.retry.maxAttempts"),
        ("retry", {"maxAttempts": 0}, "spec.retry.maxAttempts"),
        ("resources", {"requests": {"cpu": "abc"}}, "spec.resources.requests.cpu"),
    ],
    ids=[
        "number-for-image",
        "string-for-command",
        "string-for-int",
        "below-minimum",
        "bad-quantity",
    ],
)
def test_wrong_types_are_refused_at_apply_naming_the_field(
    ns: str, field: str, value: Any, named: str
) -> None:
    body = workunit("bad")
    body["spec"][field] = value
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert named in result.stderr, result.stderr
    assert get("workunit", "bad", ns) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("deadlineSeconds", 10**12),
        ("startTimeoutSeconds", 9999999999999999),
        ("attemptTimeoutSeconds", 10**12),
        ("ttlSecondsAfterFinished", 10**12),
    ],
    ids=["deadline", "start-timeout", "attempt-timeout", "ttl"],
)
def test_a_duration_past_ten_years_is_refused_at_apply_naming_it(
    ns: str, field: str, value: int
) -> None:
    # It would pass, then fail every reconcile of the unit in date arithmetic.
    body = workunit("forever", {field: value})
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert f"spec.{field}" in result.stderr, result.stderr
    assert get("workunit", "forever", ns) is None

    task = {"name": "t", "template": {"spec": {"image": "busybox", field: value}}}
    job = {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkJob",
        "metadata": {"name": "forever"},
        "spec": {"tasks": [task]},
    }
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(job), check=False)
    assert result.returncode != 0
    assert f"spec.tasks[0].template.spec.{field}" in result.stderr, result.stderr
    assert get("workjob", "forever", ns) is None


def test_a_spec_with_nothing_to_run_is_refused(ns: str) -> None:
    body = {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkUnit",
        "metadata": {"name": "empty"},
        "spec": {"command": ["x"]},
    }
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0 and "spec.image or spec.template" in result.stderr


def test_shorthand_fields_beside_a_template_are_refused(ns: str) -> None:
    # The template runs; resources beside it would be half used (only by OOM growth).
    body = workunit("both", pod_labels={"app": "x"})
    body["spec"]["resources"] = {"limits": {"memory": "100Mi"}}
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "cannot be set with spec.template" in result.stderr, result.stderr
    assert get("workunit", "both", ns) is None


@pytest.mark.parametrize(
    "given",
    [{"configMap": "a", "secret": "b"}, {"mountPath": "/in"}],
    ids=["two-sources", "no-source"],
)
def test_an_input_that_is_not_one_source_is_refused_naming_it(
    ns: str, given: dict[str, str]
) -> None:
    body = workunit("inputs", {"inputs": [{"configMap": "ok"}, given]})
    result = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert "spec.inputs[1]: " in result.stderr, result.stderr
    assert "set exactly one of configMap, secret" in result.stderr, result.stderr
    assert get("workunit", "inputs", ns) is None


@pytest.mark.parametrize(
    ("resource", "value", "stored"),
    [("cpu", 0.5, "500m"), ("cpu", "500m", "500m"), ("cpu", 1, "1"), ("memory", "1Gi", "1Gi")],
    ids=["half", "milli", "one", "gi"],
)
def test_quantities_are_accepted_as_in_a_pod(
    ns: str, resource: str, value: Any, stored: str
) -> None:
    # C23: and they mean what they mean in a pod spec.
    apply(workunit("q", {"resources": {"requests": {resource: value}}}), ns)
    unit_phase("q", ns, ("Succeeded",))
    pod = kubectl("get", "pods", "-n", ns, "-o", "json").stdout
    requests = json.loads(pod)["items"][0]["spec"]["containers"][0]["resources"]["requests"]
    assert requests[resource] == stored


def test_omitted_retry_reads_back_as_the_full_default(ns: str) -> None:
    # C22: the default of the parent object is set, with every nested default.
    apply(workunit("defaults", {"suspend": True}), ns)
    retry = get("workunit", "defaults", ns)["spec"]["retry"]  # type: ignore[index]
    assert retry == {
        "maxAttempts": 3,
        "backoff": {"initialDelaySeconds": 10, "factor": 2, "maxDelaySeconds": 600, "jitter": 0.2},
        "rules": [],
        "defaultAction": "Retry",
    }


def test_a_full_status_is_stored_unpruned(ns: str) -> None:
    # C04: every field the operator writes is in the schema.
    from workunits.api.workunit import WorkUnitStatus

    apply(workunit("stored", {"suspend": True}), ns)
    unit_phase("stored", ns, ("Pending",))
    status = WorkUnitStatus.model_validate(
        {
            "phase": "BackingOff",
            "reason": "Error",
            "message": "m",
            "attempts": 2,
            "failedAttempts": 1,
            "disruptions": 1,
            "jobName": "j",
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:01:00Z",
            "nextAttemptAt": "2026-01-01T00:02:00Z",
            "memory": "2048Mi",
            "history": [
                {
                    "attempt": 1,
                    "jobName": "j",
                    "startTime": "2026-01-01T00:00:00Z",
                    "completionTime": "2026-01-01T00:00:30Z",
                    "outcome": "Failed",
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "message": "x",
                    "action": "Retry",
                    "disruptions": 1,
                }
            ],
            "result": {"nested": [1, {"a": "b"}], "n": 1.5},
            "resultRef": {"configMap": "c", "key": "result", "bytes": 5000},
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "False",
                    "reason": "r",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1,
                }
            ],
            "observedGeneration": 1,
        }
    ).dump()
    # A status-only write drives no reconcile (C03), so what is read back is what was sent.
    kubectl(
        "patch",
        "workunit",
        "stored",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    stored = get("workunit", "stored", ns)["status"]  # type: ignore[index]
    assert stored == status
