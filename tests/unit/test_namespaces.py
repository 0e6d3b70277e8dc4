"""Which namespaces the operator serves, from --namespace (names, globs, exclusions)."""

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
