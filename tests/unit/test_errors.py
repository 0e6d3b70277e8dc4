"""API errors: sorted into temporary and permanent, told in the API server's words."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from workunits.kube.errors import PermanentError, TemporaryError, classify


def error(status: int, body: str = "", headers: dict[str, str] | None = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = body
    exc.headers = headers or {}
    return exc


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (409, TemporaryError),
        (429, TemporaryError),
        (500, TemporaryError),
        (503, TemporaryError),
        (0, TemporaryError),
        (400, PermanentError),
        (403, PermanentError),
        (404, PermanentError),
        (422, PermanentError),
    ],
)
def test_status_codes_are_sorted(status: int, kind: type) -> None:
    assert isinstance(classify(error(status), "create Job"), kind)


def test_retry_after_sets_the_delay() -> None:
    assert classify(error(429, headers={"Retry-After": "7"}), "x").delay == 7


def test_the_status_message_is_used_not_the_raw_body() -> None:
    body = json.dumps({"kind": "Status", "message": 'Job.batch "j" is invalid: spec.x: bad'})
    text = str(classify(error(422, body), "create Job ns/j"))
    assert text == 'create Job ns/j: 422 Reason: Job.batch "j" is invalid: spec.x: bad'
