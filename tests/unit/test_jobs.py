"""The Job of an attempt: one pure function of the unit."""

from __future__ import annotations

import json

from tests.unit.builders import UID, unit
from workunits.core.names import LABEL_ATTEMPT, LABEL_UNIT_UID
from workunits.kube.jobs import build_job


def env_of(job: dict) -> dict[str, str]:  # type: ignore[type-arg]
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_an_attempt_is_a_job_that_never_retries_itself() -> None:
    job = build_job(unit({"command": ["run"], "args": ["--x"]}), 2, "hello-2-abc", None)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget"}],
    }
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["run"]


def test_labels_and_owner_name_the_unit() -> None:
    job = build_job(unit(), 3, "hello-3-abc", None)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[LABEL_UNIT_UID] == UID and labels[LABEL_ATTEMPT] == "3"
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "WorkUnit" and owner["uid"] == UID and owner["controller"]


def test_parameters_and_identity_reach_the_container() -> None:
    job = build_job(
        unit(
            {"parameters": {"INPUT": "s3://b/f.parquet"}, "env": [{"name": "MODE", "value": "x"}]}
        ),
        1,
        "j",
        None,
    )
    env = env_of(job)
    assert env["WORKUNIT_NAME"] == "hello" and env["WORKUNIT_ATTEMPT"] == "1"
    assert json.loads(env["WORKUNIT_PARAMETERS"]) == {"INPUT": "s3://b/f.parquet"}
    assert env["INPUT"] == "s3://b/f.parquet" and env["MODE"] == "x"


def test_numeric_quantities_become_strings() -> None:
    job = build_job(
        unit({"resources": {"requests": {"cpu": 0.5, "memory": "1Gi"}, "limits": {"cpu": 1}}}),
        1,
        "j",
        None,
    )
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"cpu": "1"}}


def test_memory_after_oom_overrides_request_and_limit() -> None:
    job = build_job(unit({"resources": {"limits": {"memory": "1Gi"}}}), 2, "j", "2Gi")
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["memory"] == "2Gi"
    assert resources["requests"]["memory"] == "2Gi"


def test_a_full_template_is_used_as_given_plus_our_labels() -> None:
    template = {
        "metadata": {"labels": {"team": "data"}},
        "spec": {"containers": [{"name": "main", "image": "x"}], "nodeSelector": {"gpu": "yes"}},
    }
    job = build_job(
        unit({"image": None, "template": template, "priorityClassName": "high"}), 1, "j", None
    )
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["spec"]["nodeSelector"] == {"gpu": "yes"}
    assert pod["spec"]["priorityClassName"] == "high"
    assert template["metadata"]["labels"] == {"team": "data"}  # the unit's spec is untouched


def test_restart_on_failure_drops_the_pod_failure_policy() -> None:
    template = {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "m", "image": "x"}]}}
    job = build_job(unit({"image": None, "template": template}), 1, "j", None)
    assert "podFailurePolicy" not in job["spec"]


def test_attempt_timeout_is_the_jobs_active_deadline() -> None:
    job = build_job(unit({"attemptTimeoutSeconds": 30}), 1, "j", None)
    assert job["spec"]["activeDeadlineSeconds"] == 30


def test_inputs_are_mounted_read_only() -> None:
    job = build_job(
        unit({"inputs": [{"configMap": "files"}, {"secret": "creds", "mountPath": "/etc/creds"}]}),
        1,
        "j",
        None,
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "workunits-input-0", "configMap": {"name": "files"}},
        {"name": "workunits-input-1", "secret": {"secretName": "creds"}},
    ]
    mounts = pod["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/var/run/workunits/inputs/files", "/etc/creds"]
    assert all(m["readOnly"] for m in mounts)
