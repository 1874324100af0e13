"""Pinned wheels already in a folder are not fetched again (the image build's no-change path)."""

from __future__ import annotations

from pathlib import Path

from scripts import wheels


def test_only_pins_without_a_wheel_of_that_name_and_version_are_missing(tmp_path: Path) -> None:
    (tmp_path / "xgboost_cpu-3.2.0-py3-none-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "awscrt-0.36.0-cp311-abi3-manylinux_2_17_x86_64.whl").touch()  # another version than the pin
    pins = ["xgboost-cpu==3.2.0", "awscrt==0.36.1", "awsiotsdk==1.31.0"]
    assert wheels.missing(pins, tmp_path) == ["awscrt==0.36.1", "awsiotsdk==1.31.0"]
    (tmp_path / "AWSCRT-0.36.1-cp311-abi3-manylinux_2_17_x86_64.whl").touch()  # names compare canonically
    (tmp_path / "awsiotsdk-1.31.0-py3-none-any.whl").touch()
    assert wheels.missing(pins, tmp_path) == []
