"""The install artefacts agree with the code: CRDs, RBAC, securityContext, chart values.

No cluster and no helm here: the YAML is read as committed. tests/integration/
test_install.py renders and applies it on the local control plane.
"""

from __future__ import annotations

import pathlib
import re
import tomllib
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CHART = ROOT / "charts" / "workunits"
CRD_FILES = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))

# Everything the operator does with the API, and nothing more (docs/install.md).
NAMESPACED_RULES = {
    ("workunits.io", "workunits"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("workunits.io", "workjobs"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("workunits.io", "workunits/status"): {"get", "update", "patch"},
    ("workunits.io", "workjobs/status"): {"get", "update", "patch"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "configmaps"): {"get", "list", "create", "update", "patch", "delete"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
# Cluster-wide, kopf also watches CRDs to notice ones installed after it started.
CLUSTER_RULES = {
    **NAMESPACED_RULES,
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}
# Leader election: the Lease, in the operator's own namespace only (a Role, never
# cluster-wide).
LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
LEASE_ROLE = "workunits-operator-leader-election"
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


def kustomize_docs(folder: pathlib.Path) -> list[dict[str, Any]]:
    """The objects a kustomization lists, its folders followed; patches not applied."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            docs += kustomize_docs(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def rules_of(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                found.setdefault((group, resource), set()).update(rule["verbs"])
    return found


def chart_rules(helper: str = "workunits.rules") -> list[dict[str, Any]]:
    """The rules of one of the chart's rule helpers (by default, each watched namespace's)."""
    text = (CHART / "templates" / "_helpers.tpl").read_text()
    block = re.search(rf'define "{re.escape(helper)}" -}}}}\n(.*?)\n{{{{- end', text, re.S)
    assert block, f"_helpers.tpl has no {helper}"
    return yaml.safe_load(block.group(1))  # type: ignore[no-any-return]


def roles_by_name(docs: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str], set[str]]]:
    return {d["metadata"]["name"]: rules_of(d) for d in docs if d["kind"] == "Role"}


def lease_binding_is_to_the_operator(docs: list[dict[str, Any]]) -> None:
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == LEASE_ROLE
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": LEASE_ROLE,
    }
    (subject,) = binding["subjects"]
    assert (subject["kind"], subject["name"]) == ("ServiceAccount", "workunits-operator")


@pytest.mark.parametrize("folder", ["manifests/crds", "charts/workunits/crds"])
def test_crd_copies_are_identical_to_crds(folder: str) -> None:
    copies = sorted(
        p.name for p in (ROOT / folder).glob("*.yaml") if p.name != "kustomization.yaml"
    )
    assert copies == CRD_FILES, f"{folder} has other CRD files than crds/"
    for name in CRD_FILES:
        assert (ROOT / folder / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
            f"{folder}/{name} differs from crds/{name}: run `make crds` and commit the result"
        )


def test_the_base_installs_the_crds_and_the_operator() -> None:
    kinds = sorted(d["kind"] for d in kustomize_docs(MANIFESTS))
    assert kinds == sorted(
        ["CustomResourceDefinition"] * len(CRD_FILES)
        + [
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ServiceAccount",
            "Deployment",
            "Service",
        ]
    )


def test_cluster_rbac_is_exactly_what_the_operator_uses() -> None:
    docs = kustomize_docs(MANIFESTS)
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert rules_of(role) == CLUSTER_RULES
    # Leases only in the operator's namespace: a Role, and the only one.
    assert roles_by_name(docs) == {LEASE_ROLE: LEASE_RULES}
    lease_binding_is_to_the_operator(docs)


def test_namespaced_rbac_is_exactly_what_the_operator_uses() -> None:
    docs = kustomize_docs(MANIFESTS / "namespaced")
    assert roles_by_name(docs) == {
        "workunits-operator": NAMESPACED_RULES,
        LEASE_ROLE: LEASE_RULES,
    }
    lease_binding_is_to_the_operator(docs)


def test_chart_rbac_is_exactly_what_the_operator_uses() -> None:
    assert rules_of({"rules": chart_rules()}) == NAMESPACED_RULES
    assert rules_of({"rules": chart_rules("workunits.leaseRules")}) == LEASE_RULES
    template = (CHART / "templates" / "rbac.yaml").read_text()
    assert "customresourcedefinitions]" in template and "namespaces]" in template
    assert "leases" not in template, "leases belong in the release namespace's Role only"


def test_chart_grants_leases_in_the_release_namespace_only_with_leader_election() -> None:
    template = (CHART / "templates" / "leader-election-rbac.yaml").read_text()
    assert template.startswith("{{- if and .Values.rbac.create .Values.leaderElection.enabled }}")
    assert template.count("namespace: {{ .Release.Namespace }}") == 3  # Role, binding, subject
    assert "kind: Role\n" in template and "ClusterRole" not in template
    assert template.count('include "workunits.leaseRules"') == 1


def test_no_rule_is_a_wildcard_or_escalation() -> None:
    roles = [d for d in kustomize_docs(MANIFESTS) if d["kind"] in ("ClusterRole", "Role")]
    roles += [d for d in kustomize_docs(MANIFESTS / "namespaced") if d["kind"] == "Role"]
    roles.append({"rules": chart_rules()})
    roles.append({"rules": chart_rules("workunits.leaseRules")})
    for role in roles:
        for (group, resource), verbs in rules_of(role).items():
            assert "*" not in (group, resource) and "*" not in verbs
            assert not verbs & {"escalate", "bind", "impersonate"}, resource
            assert resource != "secrets", "the operator never reads Secrets"


def test_namespaced_overlay_has_no_cluster_scoped_object() -> None:
    # C11: a namespace admin can install it; it never asks for cluster-wide access.
    kinds = {d["kind"] for d in kustomize_docs(MANIFESTS / "namespaced")}
    assert kinds == {"ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"}
    assert not kinds & CLUSTER_SCOPED


def test_namespaced_overlay_watches_its_own_namespace() -> None:
    spec = yaml.safe_load((MANIFESTS / "namespaced" / "kustomization.yaml").read_text())
    ops = yaml.safe_load(spec["patches"][0]["patch"])
    args = next(op["value"] for op in ops if op["path"].endswith("/args"))
    assert args == ["--namespace", "$(POD_NAMESPACE)"]
    # POD_NAMESPACE comes from the shared Deployment, once: the patch adds no env.
    assert not [op for op in ops if "/env" in op["path"]], ops
    (deployment,) = [
        d for d in kustomize_docs(MANIFESTS / "namespaced") if d["kind"] == "Deployment"
    ]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    (pod_namespace,) = [e for e in env if e["name"] == "POD_NAMESPACE"]
    assert pod_namespace["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _assert_restricted(pod: dict[str, Any], container: dict[str, Any]) -> None:
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0
    for key, value in RESTRICTED_CONTAINER.items():
        assert container[key] == value, key


def test_deployment_is_restricted_with_probes_and_resources() -> None:
    (deployment,) = [d for d in kustomize_docs(MANIFESTS) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    _assert_restricted(pod["securityContext"], container["securityContext"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WORKUNITS_BIND_ADDRESS"] == "0.0.0.0" and env["WORKUNITS_HEALTH_PORT"]
    assert deployment["spec"]["replicas"] == 1


def test_deployment_runs_with_leader_election_and_rolls_a_pod_at_a_time() -> None:
    (deployment,) = [d for d in kustomize_docs(MANIFESTS) if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"duplicate env entries: {names}"
    env = {e["name"]: e for e in container["env"]}
    assert env["WORKUNITS_LEADER_ELECT"]["value"] == "true"
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # The Lease is the default one, in the operator's namespace, as the Role grants.
    assert not {"WORKUNITS_LEASE_NAME", "WORKUNITS_LEASE_NAMESPACE"} & set(env)
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == "workunits-operator"


def test_chart_probes_liveness_and_readiness_apart() -> None:
    template = (CHART / "templates" / "deployment.yaml").read_text()
    probes = re.findall(r"(livenessProbe|readinessProbe):\s+httpGet:\s+path: (\S+)", template)
    assert probes == [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]


def test_chart_defaults_are_restricted() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    _assert_restricted(values["podSecurityContext"], values["securityContext"])
    assert values["replicas"] == 1
    assert values["leaderElection"] == {"enabled": True}


def test_every_value_is_documented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        key = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not key:
            continue
        above = lines[number - 1].strip() if number else ""
        if not above.startswith("#") and "#" not in line:
            undocumented.append(f"line {number + 1}: {key.group(2)}")
    assert not undocumented, f"values.yaml keys without a comment: {undocumented}"


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[-1]), user
    assert 'ENTRYPOINT ["workunits", "run"]' in text
    assert "--require-hashes -r requirements.lock" in text


def test_requirements_lock_pins_every_dependency_with_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\$", text, re.M)
    # Every runtime dependency the package declares is pinned (the image installs the lock).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert declared <= {p.lower() for p in pins}, declared - {p.lower() for p in pins}
    blocks = re.split(r"^(?=[A-Za-z0-9_.-]+==)", text, flags=re.M)[1:]
    assert all("--hash=sha256:" in block for block in blocks)
