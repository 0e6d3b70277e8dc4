"""The operator's one shared context, set at startup."""

from __future__ import annotations

from workunits.handlers.context import Context

_context: Context | None = None


def install(ctx: Context) -> None:
    global _context
    _context = ctx


def context() -> Context:
    if _context is None:
        raise RuntimeError("the operator context is not installed (startup has not run)")
    return _context
