"""The metrics endpoint of an operator of our own, after units with known outcomes."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from tests.kube import apply, free_port, running, unit_phase, wait_for, workunit

OOM = {
    "labels": {"sim.workunits.io/outcome": "fail"},
    "annotations": {"sim.workunits.io/reason": "OOMKilled", "sim.workunits.io/exit-code": "137"},
}
RETRY_AT_ONCE = {"retry": {"maxAttempts": 2, "backoff": {"initialDelaySeconds": 0}}}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_endpoint_reports_exactly_the_outcomes(solo_ns: str) -> None:
    port = free_port()
    with running("--namespace", solo_ns, "--metrics-port", str(port), name="metrics-operator"):
        apply(workunit("ok-1"), solo_ns)
        apply(workunit("ok-2"), solo_ns)
        apply(
            workunit(
                "oom", RETRY_AT_ONCE, pod_labels=OOM["labels"], pod_annotations=OOM["annotations"]
            ),
            solo_ns,
        )
        for name in ("ok-1", "ok-2"):
            unit_phase(name, solo_ns, ("Succeeded",))
        unit_phase("oom", solo_ns, ("Failed",))

        expected = {
            ("workunits_workunits", (("phase", "Succeeded"),)): 2,
            ("workunits_workunits", (("phase", "Failed"),)): 1,
            ("workunits_workunits", (("phase", "Running"),)): 0,
            ("workunits_attempts_started_total", ()): 4,
            ("workunits_attempts_failed_total", (("reason", "OOMKilled"),)): 2,
            ("workunits_attempts_failed_total", (("reason", "Error"),)): 0,
            ("workunits_attempts_failed_total", (("reason", "Other"),)): 0,
            ("workunits_units_finished_total", (("phase", "Succeeded"),)): 2,
            ("workunits_units_finished_total", (("phase", "Failed"),)): 1,
            ("workunits_units_finished_total", (("phase", "Cancelled"),)): 0,
            ("workunits_unit_duration_seconds_count", (("phase", "Succeeded"),)): 2,
            ("workunits_unit_duration_seconds_count", (("phase", "Failed"),)): 1,
            ("workunits_unit_running_seconds_count", (("phase", "Failed"),)): 1,
            ("workunits_jobs_created_total", ()): 4,
            ("workunits_api_writes_total", (("resource", "jobs"), ("verb", "create"))): 4,
            ("workunits_disruptions_total", ()): 0,
            ("workunits_queue_depth", (("queue", "workunits"),)): 0,
        }

        def matches() -> Samples | None:
            seen = scrape(port)
            got = {key: seen.get(key) for key in expected}
            return seen if got == expected else None

        # The phase gauges follow the watch, a moment after the writes the test saw.
        try:
            seen = wait_for("the metrics to match", matches, timeout=20)
        except AssertionError:
            seen = scrape(port)
            assert {key: seen.get(key) for key in expected} == expected

        reconciles = seen[("workunits_reconcile_duration_seconds_count", (("kind", "workunit"),))]
        assert reconciles >= 3
        assert seen[("workunits_reconcile_errors_total", (("kind", "workunit"),))] == 0
        status_patches = seen[
            ("workunits_api_writes_total", (("resource", "workunits/status"), ("verb", "patch")))
        ]
        assert status_patches >= 3
