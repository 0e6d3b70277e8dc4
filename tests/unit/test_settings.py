"""The operator's settings: which namespaces it serves (names, globs, exclusions), and
settings that cannot work, refused before it starts."""

from __future__ import annotations

import pytest

from workunits.handlers.units import _namespace_filter
from workunits.settings import exact_namespaces, namespace_patterns


@pytest.mark.parametrize(
    ("namespaces", "served", "not_served"),
    [
        (["team-*", "!team-x"], ["team-y", "team-a"], ["team-x", "other-y", "default"]),
        (["!team-x"], ["other", "team-y"], ["team-x"]),
        (["a", "b"], ["a", "b"], ["c", "ab"]),
        (["team-*", "ops", "!team-x", "!*-tmp"], ["team-y", "ops"], ["team-x", "team-tmp"]),
    ],
)
def test_exclusions_apply_to_every_name_and_glob(
    namespaces: list[str], served: list[str], not_served: list[str]
) -> None:
    serves = _namespace_filter(namespaces)
    assert [n for n in served if not serves(n)] == []
    assert [n for n in not_served if serves(n)] == []


def test_kopf_gets_one_pattern_per_alternative_with_the_exclusions_in_each() -> None:
    assert namespace_patterns(["a", "b"]) == ["a", "b"]
    assert namespace_patterns(["team-*", "!team-x"]) == ["team-*,!team-x"]
    assert namespace_patterns(["!x", "!y"]) == ["!x,!y"]
    assert namespace_patterns([]) == []


def test_only_plain_names_are_exact() -> None:
    assert exact_namespaces(["a", "b"])
    assert not exact_namespaces(["team-*"])
    assert not exact_namespaces(["a", "!b"])
    assert not exact_namespaces([])


def test_settings_that_cannot_work_are_named() -> None:
    from workunits.settings import Settings

    settings = Settings(workers=0, running_delay=-1, metrics_port=99999, health_port=8080)
    problems = settings.problems()
    assert problems == [
        "--workers (WORKUNITS_WORKERS) must be at least 1, not 0",
        "--running-delay (WORKUNITS_RUNNING_DELAY) must be at least 0, not -1",
        "--metrics-port (WORKUNITS_METRICS_PORT) must be a port from 0 (off) to 65535, not 99999",
    ]
    assert Settings(workers=1, metrics_port=0, health_port=0).problems() == []


@pytest.mark.parametrize("value", [1e12, float("inf"), float("nan")], ids=["1e12", "inf", "nan"])
def test_delays_too_long_to_add_to_a_clock_are_named(value: float) -> None:
    from workunits.settings import Settings

    problems = Settings(running_delay=value, lease_duration=value).problems()
    assert problems == [
        f"--running-delay (WORKUNITS_RUNNING_DELAY) must be at most 3600, not {value}",
        f"--lease-duration (WORKUNITS_LEASE_DURATION) must be at most 3600, not {value}",
    ]


def test_the_operator_refuses_to_start_with_them(capsys: pytest.CaptureFixture[str]) -> None:
    from workunits.cli.main import main

    assert main(["run", "--workers", "-3", "--namespace", "x"]) == 2
    assert "--workers (WORKUNITS_WORKERS) must be at least 1, not -3" in capsys.readouterr().err
