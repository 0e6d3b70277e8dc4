"""The tasks of a WorkJob as a graph: checked, then put in the order they can run.

The CRD schema cannot see across tasks, so what only the whole list shows is checked
here: names are unique, every dependsOn names a task, there is no cycle (the message
walks it: ``a -> b -> a``), and a fromTask generator reads a task it depends on.
"""

from __future__ import annotations

from collections.abc import Sequence

from workunits.api.workjob import Task


class DagError(ValueError):
    """The tasks do not form a valid graph; the message says what to change."""


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """A path that comes back to its start, ``[a, b, a]``, or [] when there is none."""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        # Depth first, the current path kept, without recursion (graphs may be deep).
        path: list[str] = [start]
        on_path = {start}
        pending = [iter(graph[start])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                finished = path.pop()
                done.add(finished)
                on_path.discard(finished)
                pending.pop()
                continue
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt in done or nxt not in graph:
                continue
            path.append(nxt)
            on_path.add(nxt)
            pending.append(iter(graph[nxt]))
    return []


def validate(tasks: Sequence[Task]) -> list[str]:
    """The task names in an order where each comes after what it depends on.

    Ties keep the order of the spec. Raises DagError on the first problem found.
    """
    names = [task.name for task in tasks]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DagError(f"task name {name!r} is used more than once")
        seen.add(name)

    graph: dict[str, list[str]] = {}
    for task in tasks:
        deps = list(task.depends_on or [])
        for dep in deps:
            if dep not in seen:
                raise DagError(f"task {task.name!r} depends on {dep!r}, which is not a task")
        source = task.generator.from_task if task.generator is not None else None
        if source is not None and source.task not in deps:
            raise DagError(
                f"task {task.name!r} reads fromTask {source.task!r}, which must be in its dependsOn"
            )
        graph[task.name] = deps

    cycle = find_cycle(graph)
    if cycle:
        raise DagError("tasks depend on each other in a cycle: " + " -> ".join(cycle))
    return topological_order(names, graph)


def topological_order(names: Sequence[str], graph: dict[str, list[str]]) -> list[str]:
    """Kahn's order, taking the earliest task in the spec among those ready."""
    position = {name: i for i, name in enumerate(names)}
    waiting = {name: set(graph[name]) for name in names}
    order: list[str] = []
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if not deps), key=position.__getitem__)
        if not ready:
            raise DagError("tasks depend on each other in a cycle")
        first = ready[0]
        order.append(first)
        del waiting[first]
        for deps in waiting.values():
            deps.discard(first)
    return order
