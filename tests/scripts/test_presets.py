"""The rollout presets: typed values, the job configuration the IoT API takes, and the README's table of them."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest

from scripts.fleet import presets
from scripts.product import REPO


def test_the_readme_table_is_the_presets() -> None:
    """Row by row, in order: a preset changed in code and not in the README (or the other way) fails here."""
    readme = (REPO / "README.md").read_text()
    table = re.search(r"^\| preset \| rollout .*\n\|---.*\n((?:\|.*\n)+)", readme, re.MULTILINE)
    assert table is not None, "the README's table of rollout presets"
    assert table.group(1).splitlines() == [preset.row() for preset in presets.PRESETS.values()]


def within(value: Any, shape: Any, where: str) -> None:
    """`value` as the model's `shape` allows it: known members, numbers in [min, max], strings in their enum."""
    if shape.type_name == "structure":
        assert isinstance(value, dict) and set(value) <= set(shape.members), f"{where}: {value}"
        assert set(shape.required_members) <= set(value), f"{where}: lacks {shape.required_members}"
        for key, item in value.items():
            within(item, shape.members[key], f"{where}.{key}")
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            within(item, shape.member, f"{where}[{index}]")
    elif shape.type_name in ("integer", "long", "double"):
        bounds = shape.metadata
        assert bounds.get("min", value) <= value <= bounds.get("max", value), f"{where}: {value} outside {bounds}"
    elif shape.type_name == "string" and shape.enum:
        assert value in shape.enum, f"{where}: {value} not in {shape.enum}"


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_each_preset_is_a_job_configuration_greengrassv2_accepts(name: str) -> None:
    """Checked against botocore's greengrassv2 model of CreateDeployment's iotJobConfiguration (the API the
    tooling calls): its members, the required ones, and each number's bounds (a rate 1-1000 a minute, an
    increment factor 1-5, a threshold up to 100%)."""
    shape = botocore.session.get_session().get_service_model("greengrassv2").shape_for("DeploymentIoTJobConfiguration")
    configuration = presets.PRESETS[name].job_configuration()
    within(configuration, shape, name)
    assert configuration["jobExecutionsRolloutConfig"]["maximumPerMinute"] == presets.PRESETS[name].maximum
    assert presets.DEFAULT in presets.PRESETS
