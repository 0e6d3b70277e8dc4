"""``get`` and ``describe``: WorkUnits and WorkJobs as tables and as reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml

from workunits.cli.cluster import KINDS, WORKJOB, WORKUNIT, Cluster, Kind
from workunits.cli.progress import format_counts, format_duration


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(text: str | None, now: datetime | None = None) -> str:
    start = _time(text)
    if start is None:
        return "-"
    return format_duration(((now or datetime.now(UTC)) - start).total_seconds())


def between(start: str | None, end: str | None) -> str:
    a, b = _time(start), _time(end)
    return format_duration((b - a).total_seconds()) if a and b else "-"


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Columns padded as kubectl pads them: three spaces apart, upper-case headers."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write("   ".join(cells).rstrip() + "\n")


def unit_row(obj: dict[str, Any], wide: bool) -> list[str]:
    status = obj.get("status") or {}
    row = [
        obj["metadata"]["name"],
        status.get("phase") or "Pending",
        str(status.get("attempts") or 0),
        status.get("reason") or "",
        age(obj["metadata"].get("creationTimestamp")),
    ]
    if wide:
        row.append((status.get("message") or "")[:80])
    return row


def workjob_row(obj: dict[str, Any], wide: bool) -> list[str]:
    status = obj.get("status") or {}
    counts = status.get("counts") or {}
    row = [
        obj["metadata"]["name"],
        status.get("phase") or "Pending",
        status.get("reason") or "",
        status.get("progress") or f"0/{counts.get('total', 0)}",
        str(counts.get("failed") or 0),
        status.get("eta") or "",
        age(obj["metadata"].get("creationTimestamp")),
    ]
    if wide:
        row.append(format_counts(counts))
    return row


HEADERS = {
    WORKUNIT: ["NAME", "PHASE", "ATTEMPTS", "REASON", "AGE"],
    WORKJOB: ["NAME", "PHASE", "REASON", "PROGRESS", "FAILED", "ETA", "AGE"],
}
WIDE = {WORKUNIT: "MESSAGE", WORKJOB: "COUNTS"}


def get(
    cluster: Cluster,
    kinds: Sequence[Kind],
    namespace: str | None,
    names: Sequence[str],
    output: str,
    out: TextIO,
) -> int:
    objects: list[dict[str, Any]] = []
    for kind in kinds:
        if names:
            assert namespace is not None
            objects += [cluster.get(kind, namespace, name) for name in names]
        else:
            objects += cluster.items(kind, namespace)
    if output in ("json", "yaml"):
        document = objects[0] if names and len(objects) == 1 else {"items": objects}
        if output == "json":
            out.write(json.dumps(document, indent=2) + "\n")
        else:
            out.write(yaml.safe_dump(document, sort_keys=False))
        return 0
    if output == "name":
        for obj in objects:
            out.write(f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}/")
            out.write(f"{obj['metadata']['name']}\n")
        return 0
    if not objects:
        where = f'in namespace "{namespace}"' if namespace else "in any namespace"
        out.write(f"No {' or '.join(k.plural for k in kinds)} found {where}.\n")
        return 0
    wide = output == "wide"
    for index, kind in enumerate(kinds):
        mine = [o for o in objects if o.get("kind") == kind.kind]
        if not mine:
            continue
        if index and len(kinds) > 1:
            out.write("\n")
        headers = list(HEADERS[kind]) + ([WIDE[kind]] if wide else [])
        if len(kinds) > 1:
            headers[0] = f"{kind.singular}/NAME".upper()
        rows = [headers]
        for obj in mine:
            row = unit_row(obj, wide) if kind is WORKUNIT else workjob_row(obj, wide)
            if len(kinds) > 1:
                row[0] = f"{kind.singular}/{row[0]}"
            rows.append(row)
        if namespace is None:
            rows = [
                ["NAMESPACE", *rows[0]],
                *[[o["metadata"]["namespace"], *r] for o, r in zip(mine, rows[1:], strict=True)],
            ]
        table(rows, out)
    return 0


# -- describe -----------------------------------------------------------------------------


def _field(out: TextIO, label: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        out.write(f"{label + ':':<16}{value}\n")


def _result(out: TextIO, status: dict[str, Any], label: str = "Result") -> None:
    if status.get("result") is not None:
        text = json.dumps(status["result"], indent=2)
        if "\n" in text:
            out.write(f"{label}:\n")
            out.write("".join(f"  {line}\n" for line in text.splitlines()))
        else:
            _field(out, label, text)
    ref = status.get("resultRef")
    if ref:
        size = f", {ref['bytes']} bytes" if ref.get("bytes") is not None else ""
        _field(out, f"{label} in", f"ConfigMap {ref['configMap']} key {ref['key']}{size}")


def _conditions(out: TextIO, status: dict[str, Any]) -> None:
    conditions = status.get("conditions") or []
    if not conditions:
        return
    out.write("Conditions:\n")
    rows = [["  TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]]
    for c in conditions:
        rows.append(
            [
                f"  {c.get('type', '')}",
                c.get("status", ""),
                c.get("reason", ""),
                age(c.get("lastTransitionTime")),
                (c.get("message") or "")[:100],
            ]
        )
    table(rows, out)


def _events(out: TextIO, events: list[dict[str, Any]]) -> None:
    if not events:
        out.write("Events:         <none>\n")
        return
    out.write("Events:\n")
    rows = [["  TYPE", "REASON", "AGE", "MESSAGE"]]
    for e in events:
        rows.append(
            [
                f"  {e.get('type', '')}",
                e.get("reason", ""),
                age(e.get("lastTimestamp") or e.get("eventTime")),
                (e.get("message") or "").replace("\n", " ")[:120],
            ]
        )
    table(rows, out)


def _header(out: TextIO, obj: dict[str, Any], kind: str, extra: dict[str, str]) -> None:
    """What every description starts with: which object, and where it stands."""
    meta, status = obj["metadata"], obj.get("status") or {}
    _field(out, "Name", meta["name"])
    _field(out, "Namespace", meta["namespace"])
    _field(out, "Kind", kind)
    for label, value in extra.items():
        _field(out, label, value)
    _field(out, "Phase", status.get("phase") or "Pending")
    _field(out, "Reason", status.get("reason"))
    _field(out, "Message", status.get("message"))


_ACTION_REASONS = {"NoAttemptsLeft": "no attempts left", "PastDeadline": "past the deadline"}


def attempt_action(entry: dict[str, Any], status: dict[str, Any], limit: int) -> str:
    """What an attempt's failure led to, as it happened.

    The operator records Fail, and why, when a failure the policy would retry ended the
    unit. Records written before it did say Retry or Ignore there; the last attempt of
    a failed unit had no retry after it, so it is shown as what it was.
    """
    action = entry.get("action") or ""
    why = entry.get("actionReason")
    last = entry.get("attempt") == status.get("attempts")
    if action in ("Retry", "Ignore") and last and status.get("phase") == "Failed":
        spent = action == "Retry" and int(status.get("failedAttempts") or 0) >= limit
        action, why = "Fail", "NoAttemptsLeft" if spent else "PastDeadline"
    if action and why:
        return f"{action} ({_ACTION_REASONS.get(why, why)})"
    return action


def attempts_line(status: dict[str, Any], limit: int) -> str:
    """``3 (at most 5)``, or, when the policy ignored some failures, how many of the
    attempts counted against maxAttempts: ``3 (1 counted of at most 1; 2 ignored)``.

    Every attempt but the latest failed and was judged (a Fail ends the unit), and so
    was the latest when it records an action; the judged failures not in
    failedAttempts were ignored. Counted from the status, since the history is bounded.
    """
    attempts = int(status.get("attempts") or 0)
    history = status.get("history") or []
    latest = next((h for h in history if h.get("attempt") == attempts), None)
    judged = attempts if latest is not None and latest.get("action") else attempts - 1
    ignored = max(0, judged - int(status.get("failedAttempts") or 0))
    if not ignored:
        return f"{attempts} (at most {limit})"
    return f"{attempts} ({attempts - ignored} counted of at most {limit}; {ignored} ignored)"


def describe_unit(obj: dict[str, Any], events: list[dict[str, Any]], out: TextIO) -> None:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    owners = [f"{o['kind']}/{o['name']}" for o in meta.get("ownerReferences") or []]
    _header(out, obj, "WorkUnit", {"Owned by": ", ".join(owners)})
    retry = spec.get("retry") or {}
    limit = retry.get("maxAttempts", 3)
    _field(out, "Attempts", attempts_line(status, limit))
    _field(out, "Failed", status.get("failedAttempts"))
    _field(out, "Disruptions", status.get("disruptions"))
    flags = [k for k in ("suspend", "cancel") if spec.get(k)]
    _field(out, "Spec", ", ".join(f"{k}: true" for k in flags))
    _field(out, "Depends on", ", ".join(spec.get("dependsOn") or []))
    _field(out, "Created", meta.get("creationTimestamp"))
    _field(out, "Started", status.get("startTime"))
    _field(out, "Completed", status.get("completionTime"))
    _field(out, "Next attempt", status.get("nextAttemptAt"))
    if status.get("completionTime"):
        _field(out, "Duration", between(meta.get("creationTimestamp"), status["completionTime"]))
    _result(out, status)
    history = status.get("history") or []
    if history:
        out.write("History:\n")
        rows = [["  #", "JOB", "OUTCOME", "EXIT", "REASON", "ACTION", "STARTED", "TOOK", "MESSAGE"]]
        for h in history:
            exit_code = h.get("exitCode")
            rows.append(
                [
                    f"  {h.get('attempt')}",
                    h.get("jobName", ""),
                    h.get("outcome") or "",
                    "" if exit_code is None else str(exit_code),
                    h.get("reason") or "",
                    attempt_action(h, status, limit),
                    age(h.get("startTime")),
                    between(h.get("startTime"), h.get("completionTime")),
                    (h.get("message") or "").replace("\n", " ")[:80],
                ]
            )
        table(rows, out)
    _conditions(out, status)
    _events(out, events)


def describe_workjob(obj: dict[str, Any], events: list[dict[str, Any]], out: TextIO) -> None:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    _header(out, obj, "WorkJob", {})
    _field(out, "Progress", status.get("progress"))
    _field(out, "ETA", status.get("eta"))
    _field(out, "Units", format_counts(status.get("counts") or {}))
    flags = [k for k in ("suspend", "cancel") if spec.get(k)]
    _field(out, "Spec", ", ".join(f"{k}: true" for k in flags))
    _field(out, "Re-run", spec.get("rerun"))
    _field(out, "Created", meta.get("creationTimestamp"))
    _field(out, "Started", status.get("startTime"))
    _field(out, "Completed", status.get("completionTime"))
    tasks = status.get("tasks") or []
    if tasks:
        out.write("Tasks:\n")
        rows = [["  TASK", "PHASE", "DONE", "COUNTS", "MESSAGE"]]
        for t in tasks:
            counts = t.get("counts") or {}
            done = sum(int(counts.get(k) or 0) for k in ("succeeded", "failed", "cancelled"))
            total = t.get("total") if t.get("total") is not None else counts.get("total", 0)
            rows.append(
                [
                    f"  {t.get('name', '')}",
                    t.get("phase") or "",
                    f"{done}/{total}",
                    format_counts(counts),
                    (t.get("message") or "")[:80],
                ]
            )
        table(rows, out)
        for t in tasks:
            _result(out, t, f"Result of {t.get('name')}")
    failures = status.get("failures") or []
    if failures:
        out.write("Failed units:\n")
        rows = [["  UNIT", "TASK", "INDEX", "REASON", "MESSAGE"]]
        for f in failures:
            rows.append(
                [
                    f"  {f.get('unit', '')}",
                    f.get("task", ""),
                    str(f.get("index", "")),
                    f.get("reason") or "",
                    (f.get("message") or "").replace("\n", " ")[:80],
                ]
            )
        table(rows, out)
    _conditions(out, status)
    _events(out, events)


def describe(cluster: Cluster, refs: Sequence[str], namespace: str, out: TextIO) -> int:
    for index, ref in enumerate(refs):
        obj = cluster.find(ref, namespace, KINDS)
        if index:
            out.write("\n")
        events = cluster.events(obj)
        if obj["kind"] == "WorkJob":
            describe_workjob(obj, events, out)
        else:
            describe_unit(obj, events, out)
    return 0
