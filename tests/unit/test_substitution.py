"""Placeholders in full pod templates, and placeholders that are not ours."""

from __future__ import annotations

import pytest

from workunits.core.substitution import SubstitutionError, render_unit_spec


def test_shell_variables_are_left_for_the_container() -> None:
    spec = render_unit_spec({"command": ["sh", "-c", "echo ${HOME} ${item}"]}, "a", 0, "t")
    assert spec["command"][2] == "echo ${HOME} a"


def test_the_image_is_rendered_too() -> None:
    spec = render_unit_spec(
        {"image": "tools/${item.tool}:${item.tag}"}, {"tool": "a", "tag": 2}, 0, "t"
    )
    assert spec["image"] == "tools/a:2"


def test_every_string_of_a_pod_template_is_rendered() -> None:
    template = {
        "metadata": {"annotations": {"result": '{"rows": ${item.rows}}'}},
        "spec": {
            "containers": [{"name": "w", "image": "x", "args": ["${index}"]}],
            "activeDeadlineSeconds": 5,
        },
    }
    spec = render_unit_spec({"template": template}, {"rows": 7}, 3, "t")
    assert spec["template"]["metadata"]["annotations"]["result"] == '{"rows": 7}'
    assert spec["template"]["spec"]["containers"][0]["args"] == ["3"]
    assert spec["template"]["spec"]["activeDeadlineSeconds"] == 5
    assert template["metadata"]["annotations"]["result"] == '{"rows": ${item.rows}}'


def test_a_mistyped_placeholder_of_ours_is_an_error() -> None:
    with pytest.raises(SubstitutionError, match="unknown placeholder"):
        render_unit_spec({"args": ["${items}"]}, 1, 0, "t")
