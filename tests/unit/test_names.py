"""Names and labels stay within Kubernetes' limits and are unique where they must be."""

from __future__ import annotations

import re

import pytest

from workunits.core.names import child_name, job_name, label_value

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

NAMES = ["a", "hello", "x" * 253, "a.b.c", "dots." * 50 + "end", "-".join(["seg"] * 60)]


@pytest.mark.parametrize(
    "name", NAMES, ids=["one", "short", "longest", "dots", "many-dots", "dashes"]
)
def test_job_names_are_valid_label_values_at_any_length(name: str) -> None:
    for attempt in (1, 9, 1000):
        job = job_name(name, "uid-1", attempt)
        assert len(job) <= 63
        assert DNS_LABEL.match(job), job


def test_job_names_differ_between_attempts_and_between_incarnations() -> None:
    name = "x" * 253
    seen = {job_name(name, uid, n) for uid in ("uid-1", "uid-2") for n in range(1, 50)}
    assert len(seen) == 98


def test_job_names_are_deterministic() -> None:
    assert job_name("etl", "u", 3) == job_name("etl", "u", 3)
    assert job_name("etl", "u", 3).startswith("etl-3-")


@pytest.mark.parametrize("text", ["short", "x" * 63, "x" * 64, "a.b", "Weird Name!", "-lead"])
def test_label_values_are_always_valid(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value


def test_label_values_keep_text_that_fits() -> None:
    assert label_value("my-unit") == "my-unit"
    assert label_value("x" * 64) != label_value("x" * 65)


def test_child_names_fit_and_differ_by_purpose() -> None:
    a = child_name("y" * 253, "uid", "result")
    b = child_name("y" * 253, "uid", "results")
    assert a != b and len(a) <= 63 and DNS_LABEL.match(a)
