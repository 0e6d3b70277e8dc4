"""The kwok Stages of the local control plane (hack/stages/) against real Jobs.

Each test runs in a namespace of its own, creates Jobs with `kubectl create`
and checks what their pods and the real Job controller do. The pod's outcome
is chosen by the labels and annotations described in hack/README.md.

Needs a cluster from `hack/cluster.sh up` and KUBECONFIG pointing at it;
KUBECTL picks the kubectl binary (default: kubectl on PATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

KUBECONFIG = os.environ.get("KUBECONFIG", "")
KUBECTL = os.environ.get("KUBECTL", "kubectl")

if not KUBECONFIG:
    pytest.skip(
        "KUBECONFIG is not set: start the local cluster with `hack/cluster.sh up` "
        "and export the KUBECONFIG it prints",
        allow_module_level=True,
    )

pytestmark = pytest.mark.cluster

OUTCOME = "sim.workunits.io/outcome"
SUCCEED_ON_ATTEMPT = "sim.workunits.io/succeed-on-attempt"
DURATION_MS = "sim.workunits.io/duration-ms"
EXIT_CODE = "sim.workunits.io/exit-code"
REASON = "sim.workunits.io/reason"
MESSAGE = "sim.workunits.io/message"
ATTEMPT = "workunits.io/attempt"

WAIT = 60.0  # seconds; every wait below is bounded by this
POLL = 0.25


# --- helpers -----------------------------------------------------------------


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", KUBECONFIG, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def get_json(*args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", "-o", "json", *args))


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll PROBE until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


def holds_for(what: str, probe: Callable[[], bool], seconds: float) -> None:
    """Check that PROBE stays true for SECONDS, polling."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe(), f"{what} stopped holding"
        time.sleep(POLL)


def create_job(
    ns: str,
    name: str,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    backoff_limit: int = 0,
    **spec: Any,
) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"labels": labels or {}, "annotations": annotations or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "sim"}],
                },
            },
            **spec,
        },
    }
    kubectl("create", "-f", "-", stdin=json.dumps(job))


def job_pods(ns: str, job: str) -> list[dict[str, Any]]:
    return get_json("pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job}")["items"]


def one_pod(
    ns: str, job: str, predicate: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        return next((p for p in job_pods(ns, job) if predicate(p)), None)

    return wait_for(f"a pod of job {job} that is {what}", probe)


def job_condition(ns: str, job: str, ctype: str) -> dict[str, Any] | None:
    status = get_json("job", "-n", ns, job).get("status", {})
    return next(
        (c for c in status.get("conditions", []) if c["type"] == ctype and c["status"] == "True"),
        None,
    )


def wait_job(ns: str, job: str, ctype: str) -> dict[str, Any]:
    """Wait until the Job has condition CTYPE (Complete or Failed); fail fast on the other."""
    other = {"Complete": "Failed", "Failed": "Complete"}[ctype]

    def probe() -> dict[str, Any] | None:
        bad = job_condition(ns, job, other)
        assert bad is None, f"job {job} is {other}, expected {ctype}: {bad}"
        return job_condition(ns, job, ctype)

    return wait_for(f"job {job} to be {ctype}", probe)


def phase(pod: dict[str, Any]) -> str:
    return pod.get("status", {}).get("phase", "")


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    (status,) = pod["status"]["containerStatuses"]
    return status["state"]["terminated"]


def condition(pod: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in pod["status"].get("conditions", []) if c["type"] == ctype), None)


def seconds_between(start: str, end: str) -> float:
    def parse(ts: str) -> datetime:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


@pytest.fixture
def ns():
    """A namespace of the test's own; its Jobs and the namespace go at the end.

    Overrides the ``ns`` fixture of tests/integration/conftest.py on purpose:
    these tests check the simulated pods alone and need no operator.
    """
    name = f"stages-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    # Pods need the default ServiceAccount (ServiceAccount admission is on).
    wait_for(
        f"the default ServiceAccount in {name}",
        lambda: kubectl("get", "serviceaccount", "default", "-n", name, check=False),
    )
    try:
        yield name
    finally:
        kubectl(
            "delete",
            "jobs",
            "--all",
            "-n",
            name,
            "--cascade=background",
            "--wait=false",
            check=False,
        )
        kubectl("delete", "namespace", name, "--wait=false", check=False)


# --- outcomes ----------------------------------------------------------------


def test_default_succeeds_after_duration_with_message(ns):
    create_job(ns, "ok", annotations={DURATION_MS: "2000", MESSAGE: '{"rows": 42}'})
    one_pod(ns, "ok", lambda p: phase(p) == "Running", "Running")
    wait_job(ns, "ok", "Complete")
    (pod,) = job_pods(ns, "ok")
    assert phase(pod) == "Succeeded"
    term = terminated(pod)
    assert term["exitCode"] == 0
    assert term["reason"] == "Completed"
    assert term["message"] == '{"rows": 42}'
    # Timestamps have whole seconds: a 2 s run shows as at least 1 s.
    assert seconds_between(term["startedAt"], term["finishedAt"]) >= 1


def test_default_succeeds_at_once(ns):
    started = time.monotonic()
    create_job(ns, "quick")
    wait_job(ns, "quick", "Complete")
    assert time.monotonic() - started < 30
    (pod,) = job_pods(ns, "quick")
    term = terminated(pod)
    assert (phase(pod), term["exitCode"], term["reason"]) == ("Succeeded", 0, "Completed")
    assert "message" not in term


def test_fail_defaults(ns):
    create_job(ns, "bad", labels={OUTCOME: "fail"}, annotations={MESSAGE: "disk full"})
    failed = wait_job(ns, "bad", "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    pod = one_pod(ns, "bad", lambda p: phase(p) == "Failed", "Failed")
    term = terminated(pod)
    assert (term["exitCode"], term["reason"], term["message"]) == (1, "Error", "disk full")


def test_fail_oomkilled_after_duration(ns):
    create_job(
        ns,
        "oom",
        labels={OUTCOME: "fail"},
        annotations={DURATION_MS: "1500", EXIT_CODE: "137", REASON: "OOMKilled"},
    )
    running = one_pod(ns, "oom", lambda p: phase(p) == "Running", "Running")
    assert condition(running, "Ready")["status"] == "True"
    wait_job(ns, "oom", "Failed")
    pod = one_pod(ns, "oom", lambda p: phase(p) == "Failed", "Failed")
    term = terminated(pod)
    assert (term["exitCode"], term["reason"]) == (137, "OOMKilled")
    assert "message" not in term
    assert seconds_between(term["startedAt"], term["finishedAt"]) >= 1


def test_an_oom_kill_exits_137_unless_told_otherwise(ns):
    create_job(ns, "oom-default", labels={OUTCOME: "fail"}, annotations={REASON: "OOMKilled"})
    wait_job(ns, "oom-default", "Failed")
    pod = one_pod(ns, "oom-default", lambda p: phase(p) == "Failed", "Failed")
    assert (terminated(pod)["exitCode"], terminated(pod)["reason"]) == (137, "OOMKilled")


def test_hang_runs_forever(ns):
    create_job(ns, "hang", labels={OUTCOME: "hang"})
    one_pod(ns, "hang", lambda p: phase(p) == "Running", "Running")

    def still_running() -> bool:
        pods = job_pods(ns, "hang")
        return (
            len(pods) == 1
            and phase(pods[0]) == "Running"
            and not job_condition(ns, "hang", "Complete")
        )

    holds_for("pod of job hang Running", still_running, 4)


@pytest.mark.parametrize(
    ("reason", "expected_reason", "message_part"),
    [
        (None, "ImagePullBackOff", 'Back-off pulling image "sim"'),
        ("CreateContainerConfigError", "CreateContainerConfigError", "CreateContainerConfigError"),
    ],
)
def test_stuck_never_starts(ns, reason, expected_reason, message_part):
    create_job(
        ns, "stuck", labels={OUTCOME: "stuck"}, annotations={REASON: reason} if reason else None
    )

    def waiting(p: dict[str, Any]) -> bool:
        statuses = p.get("status", {}).get("containerStatuses") or []
        return bool(statuses) and "waiting" in statuses[0]["state"]

    pod = one_pod(ns, "stuck", waiting, "waiting")
    assert phase(pod) == "Pending"
    state = pod["status"]["containerStatuses"][0]["state"]
    assert state["waiting"]["reason"] == expected_reason
    assert message_part in state["waiting"]["message"]
    assert condition(pod, "Ready")["status"] == "False"

    def still_pending() -> bool:
        pods = job_pods(ns, "stuck")
        return len(pods) == 1 and phase(pods[0]) == "Pending"

    holds_for("pod of job stuck Pending", still_pending, 4)


@pytest.mark.parametrize("n", [2, 3, 6])
def test_succeed_on_attempt(ns, n):
    # One Job per attempt, as the operator creates them; attempts 1..n+1.
    for attempt in range(1, n + 2):
        create_job(
            ns,
            f"try-{attempt}",
            labels={SUCCEED_ON_ATTEMPT: str(n), ATTEMPT: str(attempt)},
            annotations={MESSAGE: f"attempt {attempt}"},
        )
    for attempt in range(1, n + 2):
        job = f"try-{attempt}"
        if attempt < n:
            wait_job(ns, job, "Failed")
            pod = one_pod(ns, job, lambda p: phase(p) == "Failed", "Failed")
            term = terminated(pod)
            assert (term["exitCode"], term["reason"]) == (1, "Error")
        else:
            wait_job(ns, job, "Complete")
            (pod,) = job_pods(ns, job)
            term = terminated(pod)
            assert term["exitCode"] == 0
        assert term["message"] == f"attempt {attempt}"


def test_succeed_on_attempt_failure_as_annotated(ns):
    create_job(
        ns,
        "try-1",
        labels={SUCCEED_ON_ATTEMPT: "2", ATTEMPT: "1"},
        annotations={EXIT_CODE: "3", REASON: "Unavailable"},
    )
    wait_job(ns, "try-1", "Failed")
    term = terminated(one_pod(ns, "try-1", lambda p: phase(p) == "Failed", "Failed"))
    assert (term["exitCode"], term["reason"]) == (3, "Unavailable")


# --- disruption ----------------------------------------------------------------

HOLD = "workunits.io/stage-test-hold"


def hold(ns: str, pod: str) -> None:
    """Add a finalizer of ours so the pod can be inspected after kwok deletes it."""
    patch = {"metadata": {"finalizers": [HOLD]}}
    kubectl("patch", "pod", pod, "-n", ns, "--type=strategic", "-p", json.dumps(patch))


def release(ns: str, pod: str) -> None:
    current = get_json("pod", pod, "-n", ns)["metadata"].get("finalizers", [])
    if HOLD in current:
        index = current.index(HOLD)
        patch = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": HOLD},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        kubectl("patch", "pod", pod, "-n", ns, "--type=json", "-p", json.dumps(patch))


def evict(ns: str, pod: str) -> None:
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": ns},
    }
    kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{ns}/pods/{pod}/eviction",
        "-f",
        "-",
        stdin=json.dumps(eviction),
    )


def gone(ns: str, pod: str) -> bool:
    return not kubectl("get", "pod", pod, "-n", ns, "--ignore-not-found", "-o", "name")


def test_eviction_is_ignored_by_pod_failure_policy(ns):
    create_job(
        ns,
        "evicted",
        labels={OUTCOME: "hang"},
        backoff_limit=0,
        podReplacementPolicy="Failed",
        podFailurePolicy={
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        },
    )
    first = one_pod(ns, "evicted", lambda p: phase(p) == "Running", "Running")
    name = first["metadata"]["name"]
    hold(ns, name)
    try:
        evict(ns, name)

        def failed(p: dict[str, Any]) -> bool:
            return p["metadata"]["name"] == name and phase(p) == "Failed"

        old = one_pod(ns, "evicted", failed, "the evicted pod, Failed")
        assert old["metadata"].get("deletionTimestamp")
        disruption = condition(old, "DisruptionTarget")
        assert disruption and disruption["status"] == "True"
        assert disruption["reason"] == "EvictionByEvictionAPI"
        term = terminated(old)
        assert (term["exitCode"], term["reason"]) == (143, "Error")
        # The Job controller has let go of it: only our finalizer is left.
        wait_for(
            "the Job controller to remove its finalizer",
            lambda: get_json("pod", name, "-n", ns)["metadata"].get("finalizers") == [HOLD],
        )
    finally:
        release(ns, name)
    wait_for(f"pod {name} to go away", lambda: gone(ns, name))

    replacement = one_pod(
        ns,
        "evicted",
        lambda p: p["metadata"]["name"] != name and phase(p) == "Running",
        "a Running replacement",
    )
    assert replacement["metadata"]["uid"] != first["metadata"]["uid"]
    job = get_json("job", "evicted", "-n", ns)
    assert job_condition(ns, "evicted", "Failed") is None
    assert job["status"].get("failed", 0) == 0
    assert job["status"].get("active") == 1


def test_plain_delete_fails_the_pod(ns):
    """A plain delete is no disruption: the pod ends Failed (exit 143) and, with
    backoffLimit 0 and no pod failure policy, the Job fails, as with a kubelet."""
    create_job(ns, "deleted", labels={OUTCOME: "hang"}, backoff_limit=0)
    pod = one_pod(ns, "deleted", lambda p: phase(p) == "Running", "Running")
    name = pod["metadata"]["name"]
    hold(ns, name)
    try:
        kubectl("delete", "pod", name, "-n", ns, "--wait=false")
        old = one_pod(
            ns,
            "deleted",
            lambda p: p["metadata"]["name"] == name and phase(p) == "Failed",
            "Failed",
        )
        assert condition(old, "DisruptionTarget") is None
        term = terminated(old)
        assert (term["exitCode"], term["reason"]) == (143, "Error")
    finally:
        release(ns, name)
    wait_for(f"pod {name} to go away", lambda: gone(ns, name))
    failed = wait_job(ns, "deleted", "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert get_json("job", "deleted", "-n", ns)["status"].get("failed") == 1
