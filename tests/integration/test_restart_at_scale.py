"""A restart with more objects than any internal limit still reconciles (kopf#1243)."""

from __future__ import annotations

from tests.kube import apply, items, running, unit_phase, wait_for, workunit

MANY = 70  # above the worker limit that once deadlocked the start-up at 64


def test_a_restart_with_many_jobs_and_pods_picks_up_new_work(solo_ns: str) -> None:
    with running("--namespace", solo_ns, name="before-restart"):
        for n in range(MANY):
            apply(workunit(f"bulk-{n}"), solo_ns)

        def all_done() -> bool:
            units = items("workunits", solo_ns)
            return len(units) == MANY and all(
                (u.get("status") or {}).get("phase") == "Succeeded" for u in units
            )

        wait_for(f"{MANY} units to succeed", all_done, timeout=240, interval=1)
    assert len(items("jobs", solo_ns)) == MANY

    with running("--namespace", solo_ns, name="after-restart"):
        apply(workunit("newcomer"), solo_ns)
        unit_phase("newcomer", solo_ns, ("Succeeded",), timeout=60)
