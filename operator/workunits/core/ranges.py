"""Sets of indices kept as sorted, disjoint ``[start, end)`` ranges.

20,000 units that all succeeded are ``[[0, 20000]]`` in a WorkJob's status; a few
failures scattered among them add a few ranges, never one entry per unit.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class IndexSet:
    """Indices as ranges: add one, test one, count, and walk the gaps."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for pair in ranges:
            start, end = pair
            self.add_range(start, end)

    def to_list(self) -> list[list[int]]:
        return [[s, e] for s, e in zip(self.starts, self.ends, strict=True)]

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self.starts, self.ends, strict=True))

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __contains__(self, index: int) -> bool:
        at = bisect.bisect_right(self.starts, index) - 1
        return at >= 0 and index < self.ends[at]

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self.starts, self.ends, strict=True):
            yield from range(start, end)

    def add(self, index: int) -> None:
        self.add_range(index, index + 1)

    def add_range(self, start: int, end: int) -> None:
        if end <= start:
            return
        # Every range that touches or overlaps [start, end) merges into one.
        low = bisect.bisect_left(self.ends, start)
        high = bisect.bisect_right(self.starts, end)
        if low < high:
            start = min(start, self.starts[low])
            end = max(end, self.ends[high - 1])
        self.starts[low:high] = [start]
        self.ends[low:high] = [end]

    def update(self, other: IndexSet) -> None:
        for start, end in zip(other.starts, other.ends, strict=True):
            self.add_range(start, end)

    def count_below(self, limit: int) -> int:
        total = 0
        for start, end in zip(self.starts, self.ends, strict=True):
            if start >= limit:
                break
            total += min(end, limit) - start
        return total

    def gaps(self, start: int, end: int) -> Iterator[int]:
        """The indices in [start, end) that are not in the set, in order."""
        at = start
        i = bisect.bisect_right(self.starts, start) - 1
        i = max(i, 0)
        while at < end:
            while i < len(self.starts) and self.ends[i] <= at:
                i += 1
            if i < len(self.starts) and self.starts[i] <= at:
                at = self.ends[i]
                continue
            stop = min(end, self.starts[i]) if i < len(self.starts) else end
            yield from range(at, stop)
            at = stop
