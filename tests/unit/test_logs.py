"""Logs: ours in kopf's format (text or JSON), tagged with the object; no secret in any."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import kopf
import pytest

from workunits.handlers.context import ObjectLogger
from workunits.logs import MASK, Redactor, redact

SECRETS = [
    pytest.param("Authorization: Bearer abc.def-ghi", "abc.def-ghi", id="bearer-header"),
    pytest.param("token=s3cr3t-value other", "s3cr3t-value", id="token-kv"),
    pytest.param('{"token": "s3cr3t"}', "s3cr3t", id="token-json"),
    pytest.param("{'password': 'hunter2'}", "hunter2", id="password-repr"),
    pytest.param(
        '{"env": [{"name": "DB_PASSWORD", "value": "p@ss w0rd"}]}', "p@ss w0rd", id="env-json"
    ),
    pytest.param("{'name': 'API', 'value': 'xyz123', 'value_from': None}", "xyz123", id="env-repr"),
    pytest.param(
        "sa token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl seen",
        "eyJhbGciOiJSUzI1NiJ9",
        id="jwt",
    ),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_are_masked(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("attempt 2: created Job etl-2-1a2b3c4d", id="job"),
        pytest.param("phase Running -> Failed (OOMKilled)", id="phase"),
        pytest.param("valueFrom secretKeyRef db/password", id="reference"),
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """kopf's handler on the root logger, as ``workunits run --log-format json`` sets it."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    kopf.configure(log_format=kopf.LogFormat.JSON, log_prefix=None)
    handler = root.handlers[-1]
    handler.setStream(out)  # type: ignore[attr-defined]
    handler.addFilter(Redactor())
    yield out
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_our_records_come_out_as_kopfs_json_with_the_object(stream: io.StringIO) -> None:
    logger = ObjectLogger(logging.getLogger("workunits.handlers.units"), ("team-a", "etl-3"))
    logger.info("attempt %d: created Job %s", 1, "etl-3-1-abcd")
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "attempt 1: created Job etl-3-1-abcd"
    assert record["severity"] == "info"
    assert record["object"]["namespace"] == "team-a"
    assert record["object"]["name"] == "etl-3"


def test_no_secret_reaches_the_json_log(stream: io.StringIO) -> None:
    log = logging.getLogger("workunits.kube.client")
    manifest = {"env": [{"name": "TOKEN", "value": "very-secret"}]}
    log.warning("refused: %s", manifest)
    try:
        raise RuntimeError("Authorization: Bearer very-secret-token")
    except RuntimeError:
        log.exception("a call failed")
    output = stream.getvalue()
    assert "very-secret" not in output
    assert output.count(MASK) >= 2
    for line in output.splitlines():
        json.loads(line)  # every line is still one JSON record
