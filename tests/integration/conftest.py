"""Integration tests: the operator against a real API server and the real Job controller.

``make test`` brings up the local control plane and sets KUBECONFIG. The operator runs
as a process watching namespaces named ``wu-it-*``; tests that stop or restart an
operator use namespaces of their own (``wu-solo-*``) with an operator of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests.kube import ROOT, Operator, apply, kubectl, new_namespace, unit_phase, workunit

SHARED_PATTERN = "wu-it-*"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath) or "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> None:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail(
            "KUBECONFIG is not set: run `make test`, or `hack/cluster.sh up` and "
            "export the KUBECONFIG it prints"
        )
    result = kubectl("get", "--raw", "/readyz", check=False, timeout=15)
    if result.returncode != 0:
        pytest.fail(
            f"no API server at KUBECONFIG={os.environ['KUBECONFIG']}: {result.stderr.strip()}"
        )
    kubectl("apply", "-f", str(ROOT / "crds"))
    for crd in ("workunits.workunits.io", "workjobs.workunits.io"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


@pytest.fixture(scope="session")
def operator(cluster: None) -> Iterator[Operator]:
    process = Operator("--namespace", SHARED_PATTERN, name="shared-operator").start()
    try:
        _probe(process)
    except AssertionError:
        process.stop()
        pytest.fail(f"the shared operator does not reconcile: {process.tail()}")
    yield process
    process.stop()


def _probe(process: Operator) -> None:
    """Wait until the operator acts in a namespace created after it started.

    With namespace patterns, kopf starts watching a new namespace when it sees it; once
    a namespace made right after start-up went unwatched. The probe makes sure the
    tests begin when the operator demonstrably follows new namespaces.
    """
    for _ in range(3):
        probe = new_namespace("wu-it-probe")
        try:
            apply(workunit("probe", {"suspend": True}), probe)
            unit_phase("probe", probe, ("Pending",), timeout=20)
            return
        except AssertionError:
            continue
        finally:
            kubectl("delete", "namespace", probe, "--wait=false", check=False)
    raise AssertionError("no probe unit was reconciled in three namespaces")


@pytest.fixture
def ns(operator: Operator) -> Iterator[str]:
    """A fresh namespace the shared operator watches."""
    name = new_namespace("wu-it")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def solo_ns(cluster: None) -> Iterator[str]:
    """A fresh namespace no shared operator watches: the test runs its own."""
    name = new_namespace("wu-solo")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
