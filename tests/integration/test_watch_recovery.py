"""The API server restarts under a running operator (C07): it watches again and carries on.

The restart happens on a cluster of the test's own, so that whatever goes wrong with
it cannot take the shared cluster down for the tests after it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from tests.kube import ROOT, apply, kubectl, new_namespace, running, unit_phase, workunit

CLUSTER_SH = str(ROOT / "hack" / "cluster.sh")


@pytest.fixture
def own_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"{os.environ.get('WORKUNITS_CLUSTER', 'workunits')}-restarts"
    env = {**os.environ, "WORKUNITS_CLUSTER": name}
    try:
        subprocess.run([CLUSTER_SH, "up"], env=env, check=True, capture_output=True, timeout=300)
        kubeconfig = subprocess.run(
            [CLUSTER_SH, "kubeconfig"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        monkeypatch.setenv("WORKUNITS_CLUSTER", name)
        monkeypatch.setenv("KUBECONFIG", kubeconfig)
        kubectl("apply", "-f", str(ROOT / "crds"))
        kubectl(
            "wait", "--for=condition=Established", "crd/workunits.workunits.io", "--timeout=60s"
        )
        yield name
    finally:
        subprocess.run([CLUSTER_SH, "down"], env=env, capture_output=True, timeout=120)


def test_units_across_an_api_server_restart_are_reconciled(own_cluster: str) -> None:
    ns = new_namespace("wu-restart")
    with running("--namespace", ns, name="survivor") as operator:
        apply(workunit("before"), ns)
        unit_phase("before", ns, ("Succeeded",))
        # Its pod ends while the control plane is down or just back: only a watch
        # that resumed (or a fresh list) can show the operator that it ended.
        apply(workunit("across", pod_annotations={"sim.workunits.io/duration-ms": "4000"}), ns)
        unit_phase("across", ns, ("Running",))

        subprocess.run([CLUSTER_SH, "restart"], check=True, capture_output=True, timeout=300)

        apply(workunit("after"), ns)
        unit_phase("after", ns, ("Succeeded",), timeout=90)
        unit_phase("across", ns, ("Succeeded",), timeout=90)
        assert operator.process is not None and operator.process.poll() is None
        log = operator.log.read_text()
        assert "watching jobs broke" in log or "watching jobs failed" in log
