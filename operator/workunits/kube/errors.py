"""Errors of the API server, sorted into those worth retrying and those that are not.

ApiError
+-- TemporaryError   409 conflict, 429, 5xx, timeouts: try again after a delay
+-- PermanentError   400, 403, 404, 422: trying again changes nothing
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None, delay: float = 1.0) -> None:
        super().__init__(message)
        self.status = status
        self.delay = delay


class TemporaryError(ApiError):
    """Worth another try after ``delay`` seconds."""


class PermanentError(ApiError):
    """Another try would fail the same way."""


def _reason(exc: ApiException) -> str:
    """The API server's own sentence when its answer is a Status object, else the body."""
    body = exc.body or ""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{exc.status} {exc.reason}: {(message or body)[:400]}"


def classify(exc: ApiException, what: str) -> ApiError:
    """Map an ApiException to the taxonomy above, with ``what`` naming the request."""
    status = exc.status or 0
    message = f"{what}: {_reason(exc)}"
    if status == 429:
        retry_after = (exc.headers or {}).get("Retry-After", "1")
        try:
            delay = float(retry_after)
        except ValueError:
            delay = 1.0
        return TemporaryError(message, status, delay)
    if status == 409 or status == 0 or status >= 500:
        return TemporaryError(message, status, 1.0)
    return PermanentError(message, status)
