"""Builds the Job of one attempt: a pure function of the unit and the attempt.

Each attempt is its own Job with ``backoffLimit: 0``: the operator owns retries.
Disruptions (eviction, preemption, node loss) mark the pod with a DisruptionTarget
condition; the Job's podFailurePolicy ignores those, so the Job controller replaces
the pod without the attempt failing, and ``podReplacementPolicy: Failed`` keeps two
copies of one attempt from running at once.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from workunits import API_VERSION
from workunits.api.workunit import WorkUnit
from workunits.core import names, quantity

CONTAINER_NAME = "work"


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def unit_labels(unit: WorkUnit, attempt: int) -> dict[str, str]:
    return {
        names.LABEL_UNIT: names.label_value(unit.metadata.name),
        names.LABEL_UNIT_UID: unit.metadata.uid,
        names.LABEL_ATTEMPT: str(attempt),
        names.LABEL_MANAGED_BY: names.MANAGER,
    }


def _resources(unit: WorkUnit) -> dict[str, Any] | None:
    given = unit.spec.resources
    if given is None:
        return None
    out: dict[str, Any] = {}
    for part in ("requests", "limits"):
        values = getattr(given, part)
        if values:
            out[part] = {k: quantity.as_string(v) for k, v in values.items()}
    return out


def _pod_template(unit: WorkUnit) -> dict[str, Any]:
    spec = unit.spec
    if spec.template is not None:
        template = copy.deepcopy(spec.template)
        template.setdefault("metadata", {})
        template.setdefault("spec", {})
        return template
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": spec.image}
    if spec.command is not None:
        container["command"] = list(spec.command)
    if spec.args is not None:
        container["args"] = list(spec.args)
    if spec.env:
        container["env"] = [e.dump() for e in spec.env]
    resources = _resources(unit)
    if resources:
        container["resources"] = resources
    return {"metadata": {}, "spec": {"containers": [container]}}


def _inject_env(container: dict[str, Any], unit: WorkUnit, attempt: int) -> None:
    """The unit's identity and parameters, ahead of the user's own variables (so the
    user's win where names clash, as Kubernetes keeps the last of duplicates)."""
    params = unit.spec.parameters or {}
    ours = [
        {"name": "WORKUNIT_NAME", "value": unit.metadata.name},
        {"name": "WORKUNIT_NAMESPACE", "value": unit.metadata.namespace},
        {"name": "WORKUNIT_ATTEMPT", "value": str(attempt)},
        {"name": "WORKUNIT_PARAMETERS", "value": json.dumps(params, sort_keys=True)},
    ]
    ours += [{"name": k, "value": v} for k, v in sorted(params.items())]
    container["env"] = ours + list(container.get("env") or [])


def _mount_inputs(pod: dict[str, Any], container: dict[str, Any], unit: WorkUnit) -> None:
    for number, source in enumerate(unit.spec.inputs or []):
        volume = f"workunits-input-{number}"
        if source.config_map is not None:
            pod.setdefault("volumes", []).append(
                {"name": volume, "configMap": {"name": source.config_map}}
            )
        else:
            pod.setdefault("volumes", []).append(
                {"name": volume, "secret": {"secretName": source.secret}}
            )
        container.setdefault("volumeMounts", []).append(
            {"name": volume, "mountPath": source.path, "readOnly": True}
        )


def build_job(unit: WorkUnit, attempt: int, job_name: str, memory: str | None) -> dict[str, Any]:
    """The Job manifest for ``attempt`` of ``unit``."""
    spec = unit.spec
    labels = unit_labels(unit, attempt)
    template = _pod_template(unit)

    meta = template["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    pod = template["spec"]
    pod.setdefault("restartPolicy", "Never")
    if spec.priority_class_name and "priorityClassName" not in pod:
        pod["priorityClassName"] = spec.priority_class_name
    if spec.service_account_name and "serviceAccountName" not in pod:
        pod["serviceAccountName"] = spec.service_account_name

    containers = pod.get("containers") or []
    if containers:
        work = containers[0]
        _inject_env(work, unit, attempt)
        _mount_inputs(pod, work, unit)
        # A failed container with no termination message reports its last log lines.
        work.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
        if memory is not None:
            resources = work.setdefault("resources", {})
            resources.setdefault("requests", {})["memory"] = memory
            resources.setdefault("limits", {})["memory"] = memory

    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": template,
    }
    if pod["restartPolicy"] == "Never":
        # Only allowed with restartPolicy Never: disruptions do not fail the attempt.
        job_spec["podFailurePolicy"] = {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        }
        job_spec["podReplacementPolicy"] = "Failed"
    if spec.attempt_timeout_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.attempt_timeout_seconds

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": unit.metadata.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference("WorkUnit", unit.metadata.name, unit.metadata.uid)],
        },
        "spec": job_spec,
    }
