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


def test_the_environment_gives_the_settings() -> None:
    from workunits.settings import Settings

    settings, problems = Settings.from_environment(
        {
            "WORKUNITS_NAMESPACES": "a, b",
            "WORKUNITS_WORKERS": "8",
            "WORKUNITS_EVENTS": "False",
            "WORKUNITS_LEADER_ELECT": "yes",
            "WORKUNITS_RUNNING_DELAY": "0.5",
            "WORKUNITS_METRICS_PORT": "",  # empty: unset
            "POD_NAMESPACE": "ops",
        }
    )
    assert problems == []
    assert settings.namespaces == ["a", "b"]
    assert (settings.workers, settings.events, settings.leader_elect) == (8, False, True)
    assert (settings.running_delay, settings.metrics_port) == (0.5, 0)
    assert settings.lease_namespace == "ops"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("WORKUNITS_WORKERS", "abc", "WORKUNITS_WORKERS must be a whole number, not 'abc'"),
        ("WORKUNITS_API_THREADS", "2.5", "must be a whole number, not '2.5'"),
        ("WORKUNITS_METRICS_PORT", "http", "must be a whole number, not 'http'"),
        ("WORKUNITS_HEALTH_PORT", "8O8O", "must be a whole number, not '8O8O'"),
        ("WORKUNITS_LEASE_DURATION", "15s", "WORKUNITS_LEASE_DURATION must be a number, not"),
        ("WORKUNITS_RUNNING_DELAY", "nan", "must be a finite number, not 'nan'"),
        ("WORKUNITS_EVENTS", "maybe", "WORKUNITS_EVENTS must be true or false"),
        ("WORKUNITS_VERBOSE", "2", "WORKUNITS_VERBOSE must be true or false"),
        ("WORKUNITS_LEADER_ELECT", "enabled", "WORKUNITS_LEADER_ELECT must be true or false"),
        ("WORKUNITS_LOG_FORMAT", "yaml", "(WORKUNITS_LOG_FORMAT) must be text or json, not 'yaml'"),
        ("WORKUNITS_BIND_ADDRESS", "999.1.1.1", "(WORKUNITS_BIND_ADDRESS) must be an IP address"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("WORKUNITS_") else "",
)
def test_a_bad_environment_value_is_one_line_naming_it(
    name: str,
    value: str,
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workunits.cli.main import main

    monkeypatch.setenv(name, value)
    assert main(["run", "--namespace", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert problem in err


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("999.1.1.1", "must be an IP address (such as 127.0.0.1, 0.0.0.0 or ::) or a host name"),
        ("127.0.0.1:8080", "must be an IP address"),
        ("192.0.2.1", "'192.0.2.1' cannot be listened on"),  # TEST-NET-1: no host's address
    ],
    ids=["no-address", "with-a-port", "another-hosts"],
)
def test_a_bind_address_that_cannot_work_is_refused(
    address: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from workunits.cli.main import main

    argv = ["run", "--namespace", "x", "--health-port", "8081", "--bind-address", address]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err, err


def test_addresses_of_this_host_are_accepted() -> None:
    from workunits.settings import Settings

    for address in ("127.0.0.1", "0.0.0.0", "localhost"):
        assert Settings(bind_address=address, health_port=8081).problems() == [], address
