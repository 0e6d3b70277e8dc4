"""The work queue: order, one entry per key, one worker per key."""

from __future__ import annotations

import asyncio

from workunits.handlers.queue import WorkQueue


def _order(adds: list[tuple[str, int, bool]], lead: int | None = None) -> list[str]:
    """The keys in the order one worker takes them, after ``adds`` (key, priority, first)."""
    taken: list[str] = []

    async def process(key: str) -> None:
        taken.append(key)

    async def main() -> None:
        queue = WorkQueue(process, workers=1, lead=lead)
        for key, priority, first in adds:
            queue.add(key, priority, first=first)
        queue.start()
        while len(queue):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        await queue.stop()

    asyncio.run(main())
    return taken


def test_higher_priority_goes_first_and_equal_ones_keep_their_order() -> None:
    assert _order([("a", 0, False), ("b", 5, False), ("c", 0, False), ("d", 5, False)]) == [
        "b",
        "d",
        "a",
        "c",
    ]


def test_a_new_object_goes_before_reports_of_its_priority_but_not_above_it() -> None:
    adds = [("running", 0, False), ("new", 0, True), ("urgent", 1, False), ("low", -1, True)]

    assert _order(adds) == ["urgent", "new", "running", "low"]


def test_new_objects_go_ahead_of_a_report_by_at_most_lead_places() -> None:
    adds = [("report", 0, False)] + [(f"new{i}", 0, True) for i in range(5)]

    assert _order(adds, lead=2) == ["new0", "new1", "report", "new2", "new3", "new4"]


def test_a_key_is_queued_once() -> None:
    assert _order([("a", 0, False), ("a", 3, True), ("b", 0, False)]) == ["a", "b"]


def test_a_key_added_while_it_is_processed_is_processed_once_more_afterwards() -> None:
    taken: list[str] = []
    running: set[str] = set()
    overlapped = False

    async def main() -> None:
        queue: WorkQueue

        async def process(key: str) -> None:
            nonlocal overlapped
            overlapped = overlapped or key in running
            running.add(key)
            taken.append(key)
            if len(taken) == 1:
                queue.add(key)  # while it runs
                queue.add(key)
                await asyncio.sleep(0.05)
            running.discard(key)

        queue = WorkQueue(process, workers=4)
        queue.start()
        queue.add("a")
        await asyncio.sleep(0.3)
        await queue.stop()

    asyncio.run(main())
    assert taken == ["a", "a"]
    assert not overlapped
