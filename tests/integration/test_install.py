"""Installing Workunits: the chart lints and renders, the kustomize base applies, and
the operator runs with nothing but the RBAC the install grants (case C11).

Helm comes from hack/build.sh (cached beside the cluster's binaries); `make test`
builds it through `hack/cluster.sh up`.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from tests.kube import (
    ROOT,
    Operator,
    apply,
    get,
    kubectl,
    new_namespace,
    unit_phase,
    wait_for,
)

CHART = ROOT / "charts" / "workunits"
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding"}
LEASE_RULES = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    }
]


def helm_binary() -> pathlib.Path | None:
    if os.environ.get("HELM"):
        return pathlib.Path(os.environ["HELM"])
    versions = (ROOT / "hack" / "versions.env").read_text()
    version = next(
        line.split("=", 1)[1].strip()
        for line in versions.splitlines()
        if line.startswith("HELM_VERSION=")
    )
    cache = pathlib.Path(
        os.environ.get("WORKUNITS_CACHE", pathlib.Path.home() / ".cache/workunits")
    )
    path = cache / "bin" / f"helm-{version}"
    return path if path.exists() else None


@pytest.fixture(scope="module")
def helm() -> pathlib.Path:
    path = helm_binary()
    if path is None:
        pytest.skip("helm is not built: run hack/build.sh (make test does, through cluster.sh up)")
    return path


def run_helm(
    helm: pathlib.Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def render(helm: pathlib.Path, namespace: str, *sets: str) -> list[dict[str, Any]]:
    args = ["template", "wu", str(CHART), "--namespace", namespace]
    for item in sets:
        args += ["--set", item]
    return [d for d in yaml.safe_load_all(run_helm(helm, *args).stdout) if d]


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param((), id="cluster-wide"),
        pytest.param(("watchNamespaces={team-a,team-b}",), id="namespaced"),
        pytest.param(
            ("watchNamespaces={team-*}", "metrics.serviceMonitor.enabled=true"),
            id="patterns-and-servicemonitor",
        ),
        pytest.param(("replicas=3",), id="replicas"),
        pytest.param(("leaderElection.enabled=false",), id="no-leader-election"),
    ],
)
def test_chart_lints(helm: pathlib.Path, sets: tuple[str, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for item in sets:
        args += ["--set", item]
    run_helm(helm, *args)


def test_chart_renders_namespaced_rbac_only_in_watched_namespaces(helm: pathlib.Path) -> None:
    docs = render(helm, "ops", "watchNamespaces={team-a,team-b}")
    assert not {d["kind"] for d in docs} & CLUSTER_SCOPED
    roles = sorted(
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Role"
    )
    # The watched namespaces, and the Lease's Role in the release namespace.
    assert roles == [
        ("ops", "wu-workunits-leader-election"),
        ("team-a", "wu-workunits"),
        ("team-b", "wu-workunits"),
    ]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--namespace=team-a", "--namespace=team-b"]


def test_chart_renders_cluster_wide_rbac_by_default(helm: pathlib.Path) -> None:
    docs = render(helm, "ops")
    kinds = [d["kind"] for d in docs]
    assert kinds.count("ClusterRole") == 1
    # The only namespaced Role is the Lease's, in the release namespace.
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["metadata"]["namespace"] == "ops" and role["rules"] == LEASE_RULES
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert not [r for r in cluster_role["rules"] if "leases" in r["resources"]]


def test_chart_crds_are_the_generated_ones(helm: pathlib.Path) -> None:
    args = ["template", "wu", str(CHART), "--include-crds"]
    docs = [d for d in yaml.safe_load_all(run_helm(helm, *args).stdout) if d]
    rendered = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    committed = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))]
    assert rendered == {d["metadata"]["name"]: d for d in committed}


def test_chart_runs_two_replicas_with_leader_election(helm: pathlib.Path) -> None:
    docs = render(helm, "ops", "replicas=2")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["WORKUNITS_LEADER_ELECT"]["value"] == "true"
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["WORKUNITS_LEASE_NAME"]["value"] == "wu-workunits"
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["metadata"]["namespace"] == "ops" and role["rules"] == LEASE_RULES
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == "ops"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "ops"}
    ]


def test_chart_refuses_two_replicas_without_leader_election(helm: pathlib.Path) -> None:
    args = ["template", "wu", str(CHART), "--set", "replicas=2"]
    result = run_helm(helm, *args, "--set", "leaderElection.enabled=false", check=False)
    assert result.returncode != 0
    assert "more than 1 needs leaderElection.enabled=true" in result.stderr


def test_chart_without_leader_election_has_no_lease_role(helm: pathlib.Path) -> None:
    docs = render(helm, "ops", "leaderElection.enabled=false")
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not env & {"WORKUNITS_LEADER_ELECT", "POD_NAMESPACE", "WORKUNITS_LEASE_NAME"}


def test_kustomize_base_applies(cluster: None) -> None:
    # The namespace is created first for real: a server-side dry run does not create it,
    # and every namespaced object of the base would be refused without it.
    created = kubectl("create", "namespace", "workunits-system", check=False).returncode == 0
    try:
        kubectl("apply", "-k", str(ROOT / "manifests"), "--dry-run=server")
    finally:
        if created:
            kubectl("delete", "namespace", "workunits-system", "--wait=false", check=False)


def test_namespaced_overlay_runs_under_restricted_pod_security(cluster: None) -> None:
    # Applied for real in a namespace enforcing the restricted Pod Security Standard:
    # the ReplicaSet can create the operator's pod only if its securityContext passes.
    ns = new_namespace("wu-install")
    try:
        kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
        docs = overlay_docs(ns)
        assert not {d["kind"] for d in docs} & CLUSTER_SCOPED
        apply(yaml.safe_dump_all(docs), ns)
        kubectl("rollout", "status", "deployment/workunits-operator", "-n", ns, "--timeout=60s")
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def overlay_docs(namespace: str) -> list[dict[str, Any]]:
    """manifests/namespaced, rendered by kubectl's kustomize and moved to ``namespace``."""
    text = kubectl("kustomize", str(ROOT / "manifests" / "namespaced")).stdout
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return docs


def service_account_kubeconfig(namespace: str, account: str, path: pathlib.Path) -> str:
    """A kubeconfig that authenticates as the ServiceAccount, with a token it was issued.

    Neither kopf nor the kubernetes client honours a kubeconfig's impersonation
    (``as:``), so the operator gets what a pod would: a bound token of its account.
    """
    config = json.loads(kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout)
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    user = config["contexts"][0]["context"]["user"]
    config["users"] = [{"name": user, "user": {"token": token}}]
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture
def rbac_ns(cluster: None) -> Iterator[str]:
    # Not wu-it-*: the shared operator, with its admin credentials, must not touch it.
    name = new_namespace("wu-rbac")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("source", ["chart", "kustomize"])
def test_operator_completes_a_unit_with_namespaced_rbac_only(
    source: str, rbac_ns: str, tmp_path: pathlib.Path
) -> None:
    # C11: the RBAC an install grants for one namespace is enough, and nothing is refused.
    if source == "chart":
        path = helm_binary()
        if path is None:
            pytest.skip("helm is not built: run hack/build.sh")
        docs = render(path, rbac_ns, f"watchNamespaces={{{rbac_ns}}}")
    else:
        docs = overlay_docs(rbac_ns)
    rbac = [d for d in docs if d["kind"] in RBAC_KINDS]
    assert {d["kind"] for d in rbac} == RBAC_KINDS
    assert not {d["kind"] for d in docs} & CLUSTER_SCOPED
    apply(yaml.safe_dump_all(rbac), rbac_ns)
    (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    identity = f"system:serviceaccount:{rbac_ns}:{account}"

    # What the account may not do, as the API server sees it.
    everywhere, here = ["--all-namespaces"], ["-n", rbac_ns]
    leases = "leases.coordination.k8s.io"
    for verb, resource, scope in (
        ("list", "namespaces", []),
        ("list", "workunits.workunits.io", everywhere),
        ("get", "secrets", here),
        ("create", leases, everywhere),
        ("delete", leases, here),
        ("list", leases, here),
    ):
        answer = kubectl(
            "auth", "can-i", verb, resource, *scope, f"--as={identity}", check=False
        ).stdout.strip()
        assert answer == "no", f"{identity} may {verb} {resource} {scope}"
    # Leader election: exactly get, create and update of Leases, in its own namespace.
    for verb in ("get", "create", "update"):
        answer = kubectl(
            "auth",
            "can-i",
            verb,
            leases,
            *here,
            f"--as={identity}",
            check=False,
        ).stdout.strip()
        assert answer == "yes", f"{identity} may not {verb} leases in {rbac_ns}"

    kubeconfig = service_account_kubeconfig(rbac_ns, account, tmp_path / "kubeconfig.json")
    whoami = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            kubeconfig,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert whoami.stdout == identity, whoami.stderr

    # The operator runs as the install runs it: leader election on, with the Lease in
    # its own namespace (POD_NAMESPACE, as the downward API sets it in the pod).
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"].startswith(("WORKUNITS_LEADER", "WORKUNITS_LEASE"))
    }
    assert env["WORKUNITS_LEADER_ELECT"] == "true"
    lease_name = env.get("WORKUNITS_LEASE_NAME", "workunits-operator")
    operator = Operator(
        "--namespace",
        rbac_ns,
        name=f"rbac-{source}",
        env={"KUBECONFIG": kubeconfig, "POD_NAMESPACE": rbac_ns, **env},
    ).start()
    try:
        apply(
            {
                "apiVersion": "workunits.io/v1alpha1",
                "kind": "WorkUnit",
                "metadata": {"name": "hello"},
                "spec": {"image": "busybox"},
            },
            rbac_ns,
        )
        unit = unit_phase("hello", rbac_ns, ("Succeeded", "Failed"), timeout=90)
        assert unit["status"]["phase"] == "Succeeded", unit["status"]
        lease = get("lease", lease_name, rbac_ns)
        assert lease and lease["spec"].get("holderIdentity"), lease
        wait_for("the operator to settle", lambda: operator.process is not None, timeout=5)
    finally:
        operator.stop()
    log = operator.log.read_text(errors="replace")
    refused = [
        line
        for line in log.splitlines()
        if "403" in line or "forbidden" in line.lower() or "Not enough permissions" in line
    ]
    assert not refused, "the operator was refused something:\n" + "\n".join(refused[:10])


def test_a_missing_permission_is_said_on_the_unit_and_work_goes_on_once_granted(
    rbac_ns: str, tmp_path: pathlib.Path
) -> None:
    # The Role without ConfigMaps: a result too large for the status cannot be stored.
    rbac = [d for d in overlay_docs(rbac_ns) if d["kind"] in RBAC_KINDS]
    partial = json.loads(json.dumps(rbac))
    for doc in partial:
        if doc["kind"] == "Role":
            doc["rules"] = [r for r in doc["rules"] if "configmaps" not in r["resources"]]
    apply(yaml.safe_dump_all(partial), rbac_ns)
    (account,) = [d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount"]
    kubeconfig = service_account_kubeconfig(rbac_ns, account, tmp_path / "kubeconfig.json")
    large = json.dumps({"text": "x" * 2000})
    operator = Operator(
        "--namespace", rbac_ns, name="rbac-forbidden", env={"KUBECONFIG": kubeconfig}
    ).start()
    try:
        apply(
            {
                "apiVersion": "workunits.io/v1alpha1",
                "kind": "WorkUnit",
                "metadata": {"name": "large"},
                "spec": {
                    "template": {
                        "metadata": {"annotations": {"sim.workunits.io/message": large}},
                        "spec": {"containers": [{"name": "work", "image": "busybox"}]},
                    }
                },
            },
            rbac_ns,
        )

        def stalled() -> dict[str, Any] | None:
            unit = get("workunit", "large", rbac_ns) or {}
            for condition in (unit.get("status") or {}).get("conditions") or []:
                if condition["type"] == "Stalled" and condition["status"] == "True":
                    return condition
            return None

        condition = wait_for("the unit to say it is stalled", stalled, timeout=60)
        assert condition["reason"] == "Forbidden"
        assert "configmaps" in condition["message"] and "403" in condition["message"]

        apply(yaml.safe_dump_all(rbac), rbac_ns)  # granted again
        unit = unit_phase("large", rbac_ns, ("Succeeded", "Failed"), timeout=90)
    finally:
        operator.stop()
    status = unit["status"]
    assert status["phase"] == "Succeeded" and status.get("resultRef"), status
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Stalled"] == "False"
    log = operator.log.read_text(errors="replace")
    assert log.count("missing permission") == 1, "said once in the log"
