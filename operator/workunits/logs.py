"""Logging: one format for kopf's records and ours, and no secret in any of them.

kopf installs the one handler, on the root logger, with its text or JSON formatter;
our loggers (``workunits.*``) propagate to it, so they come out in the same format.
A per-object record carries ``k8s_ref`` as kopf's own do: kopf's text formatter
prefixes ``[namespace/name]``, its JSON formatter adds an ``object`` field.

:class:`Redactor` is a filter on that handler. It masks what must never reach a log:
bearer tokens and JWTs, ``token``/``password``/``secret`` style fields, and the
``value`` of environment variables (a manifest or a repr of one in an error message).
It sees every record, kopf's and the kubernetes client's included.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "<redacted>"

# Each pattern keeps its group 1 (the key) and masks the rest.
_PATTERNS = [
    # Authorization headers and bearer tokens.
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    # JSON or Python-repr fields: "token": "...", 'password': '...', "value": "...".
    re.compile(
        r"""(?ix)
        ( ["'] (?: [a-z_-]*token | password | passwd | secret | api[_-]?key
                  | client[_-]?secret | authorization | value ) ["'] \s* : \s* )
        (?: "(?:[^"\\]|\\.)*" | '(?:[^'\\]|\\.)*' )
        """
    ),
    # key=value and key: value in plain text (headers, command lines).
    re.compile(
        r"(?i)(\b(?:[a-z_-]*token|password|passwd|secret|api[_-]?key|authorization)\s*[=:]\s*)"
        r"(?!<redacted>)[^\s,;\"'}]+"
    ),
]
# A JWT anywhere (service account tokens are JWTs).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """``text`` with every secret-looking value masked."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{_masked(m)}", text)
    return _JWT.sub(MASK, text)


def _masked(match: re.Match[str]) -> str:
    whole = match.group(0)[len(match.group(1)) :]
    if whole[:1] in ("'", '"'):
        return f"{whole[0]}{MASK}{whole[0]}"
    return MASK


class Redactor(logging.Filter):
    """Masks secrets in a record's message and its traceback, in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep it as it is
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # Formatters prefer exc_info over exc_text: keep only the masked text.
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact(text)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def object_ref(kind: str | None, namespace: str, name: str) -> dict[str, Any]:
    """The ``k8s_ref`` extra of a record about one object, in kopf's shape."""
    return {"kind": kind, "namespace": namespace, "name": name}


def install() -> None:
    """Add the redacting filter to the root logger's handlers (kopf's, once configured)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redactor) for f in handler.filters):
            handler.addFilter(Redactor())
