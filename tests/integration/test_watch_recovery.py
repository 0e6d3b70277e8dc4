"""The API server restarts under a running operator (C07): it re-lists and carries on."""

from __future__ import annotations

import subprocess

from tests.kube import ROOT, apply, running, unit_phase, workunit


def test_units_created_after_an_api_server_restart_are_reconciled(solo_ns: str) -> None:
    with running("--namespace", solo_ns, name="survivor") as operator:
        apply(workunit("before"), solo_ns)
        unit_phase("before", solo_ns, ("Succeeded",))

        subprocess.run(
            [str(ROOT / "hack" / "cluster.sh"), "restart"],
            check=True,
            capture_output=True,
            timeout=180,
        )

        apply(workunit("after"), solo_ns)
        unit_phase("after", solo_ns, ("Succeeded",), timeout=90)
        assert operator.process is not None and operator.process.poll() is None
