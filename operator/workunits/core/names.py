"""Names and labels of the objects the operator creates, within Kubernetes' limits.

A Job's name is derived from its unit's name, UID and attempt: readable prefix, the
attempt, a short hash. It is the same every time it is computed (so a restarted
operator finds what it created), differs between attempts, and differs between a
unit and a later unit of the same name (another UID).
"""

from __future__ import annotations

import hashlib
import re

GROUP = "workunits.io"
LABEL_UNIT = f"{GROUP}/unit"
LABEL_UNIT_UID = f"{GROUP}/unit-uid"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_WORKJOB = f"{GROUP}/workjob"
LABEL_WORKJOB_UID = f"{GROUP}/workjob-uid"
LABEL_TASK = f"{GROUP}/task"
LABEL_INDEX = f"{GROUP}/index"
LABEL_RERUN = f"{GROUP}/rerun"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "workunits"

MAX_NAME = 63  # a Job's name becomes a label value on its pods
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _prefix(name: str, room: int) -> str:
    prefix = _NOT_LABEL.sub("-", name.lower())[:room].strip("-")
    return prefix or "wu"


def job_name(unit_name: str, unit_uid: str, attempt: int) -> str:
    """The Job of one attempt: ``<prefix>-<attempt>-<hash>``, at most 63 characters."""
    suffix = f"-{attempt}-{short_hash(unit_uid, str(attempt))}"
    return _prefix(unit_name, MAX_NAME - len(suffix)) + suffix


def child_name(parent_name: str, parent_uid: str, what: str, limit: int = MAX_NAME) -> str:
    """A name for another object a parent owns, such as its result ConfigMap."""
    suffix = f"-{what}-{short_hash(parent_uid, what, length=6)}"
    return _prefix(parent_name, limit - len(suffix)) + suffix


def label_value(text: str) -> str:
    """Any text as a valid label value: kept when it fits, else shortened with a hash."""
    if len(text) <= MAX_NAME and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]?", text):
        return text
    suffix = "-" + short_hash(text)
    return _prefix(text, MAX_NAME - len(suffix)) + suffix


def unit_name(workjob: str, task: str, index: int, rerun: int = 0) -> str:
    """A WorkJob's unit: ``<workjob>-<task>-<index>``, ``-r<N>`` when re-run in re-run N.

    Over 63 characters, the WorkJob's part is shortened and a hash of the whole added,
    so names stay unique and the same every time.
    """
    tail = f"-{task}-{index}" + (f"-r{rerun}" if rerun else "")
    full = f"{workjob}{tail}"
    if len(full) <= MAX_NAME:
        return full
    suffix = f"{tail}-{short_hash(workjob, task, str(index), str(rerun), length=6)}"
    return _prefix(workjob, MAX_NAME - len(suffix)) + suffix
