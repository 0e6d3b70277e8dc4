"""A work queue of object keys, in the style of controller work queues.

A key is queued at most once; a key is processed by one worker at a time (a key
queued again while it is processed is processed once more afterwards); a key can be
scheduled for a later time, keeping only the earliest wake-up. Higher priority keys
are taken first; within a priority, a key added as ``first`` (a new object, whose work
has not started) goes ahead of the others (reports of work under way), by at most
``lead`` places: a flood of new objects delays a report, but never indefinitely.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)

Key = Hashable


class WorkQueue:
    def __init__(
        self, process: Callable[[Any], Awaitable[None]], workers: int, lead: int | None = None
    ) -> None:
        self.process = process
        self.workers = workers
        self.lead = 4 * workers if lead is None else lead
        # (-priority, place, 0 for a new object, sequence, key)
        self._queue: asyncio.PriorityQueue[tuple[int, int, int, int, Key]] = asyncio.PriorityQueue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._again: dict[Key, int] = {}
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def scheduled(self) -> int:
        return len(self._timers)

    def add(self, key: Key, priority: int = 0, *, first: bool = False) -> None:
        if key in self._active:
            self._again[key] = max(priority, self._again.get(key, priority))
            return
        if key in self._queued:
            return
        self._queued.add(key)
        seq = next(self._seq)
        place = seq - self.lead if first else seq
        self._queue.put_nowait((-priority, place, 0 if first else 1, seq, key))

    def add_at(self, key: Key, when: float, priority: int = 0) -> None:
        """Queue ``key`` at loop time ``when``, unless an earlier wake-up is set."""
        loop = asyncio.get_running_loop()
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= when:
                return
            current[1].cancel()
        handle = loop.call_at(when, self._fire, key, priority)
        self._timers[key] = (when, handle)

    def _fire(self, key: Key, priority: int) -> None:
        self._timers.pop(key, None)
        self.add(key, priority)

    def forget(self, key: Key) -> None:
        """Drop every wake-up of a key whose object is gone."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()
        self._again.pop(key, None)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"worker-{i}") for i in range(self.workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    async def _work(self) -> None:
        while True:
            priority, _, _, _, key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self.process(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # one object's fault must not stop the worker
                log.exception("reconcile of %s failed; it is retried in 5s", key)
                self.add_at(key, asyncio.get_running_loop().time() + 5, -priority)
            finally:
                self._active.discard(key)
                again = self._again.pop(key, None)
                if again is not None:
                    self.add(key, again)
