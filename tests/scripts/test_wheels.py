"""Pinned wheels already in a folder are not fetched again (the image build's no-change path)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.building import wheels
from scripts.product import REPO


def test_only_pins_without_a_wheel_of_that_name_and_version_are_missing(tmp_path: Path) -> None:
    (tmp_path / "xgboost_cpu-3.2.0-py3-none-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "awscrt-0.36.0-cp311-abi3-manylinux_2_17_x86_64.whl").touch()  # another version than the pin
    pins = ["xgboost-cpu==3.2.0", "awscrt==0.36.1", "awsiotsdk==1.31.0"]
    assert wheels.missing(pins, tmp_path) == ["awscrt==0.36.1", "awsiotsdk==1.31.0"]
    (tmp_path / "AWSCRT-0.36.1-cp311-abi3-manylinux_2_17_x86_64.whl").touch()  # names compare canonically
    (tmp_path / "awsiotsdk-1.31.0-py3-none-any.whl").touch()
    assert wheels.missing(pins, tmp_path) == []


@pytest.mark.parametrize("component", ["subscriber", "publisher"])
def test_a_components_hashed_requirements_pin_what_its_project_declares(component: str) -> None:
    """What ships is requirements.txt, in pip's hash-checking mode; pyproject.toml is what the project declares.
    They must name the same pins, and each pin must carry the hash of a wheel."""
    project = REPO / "components" / component
    assert wheels.locked(project) == wheels.declared(project)
    for pin, hashes in wheels.lock_entries(project).items():
        assert hashes and all(re.fullmatch("sha256:[0-9a-f]{64}", h) for h in hashes), pin


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal valid wheel (metadata only), built by hand: what a tampered mirror could serve for the pin."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{member},,\n" for member in [*files, f"{info}/RECORD"]))
    return path


def test_a_wheel_that_is_not_the_locked_one_is_refused(tmp_path: Path) -> None:
    """pip's hash-checking mode, as the image and the publisher zip use it: the right name and version with other
    bytes is refused before anything is installed; the wheel whose hash is locked installs."""
    wheel = _wheel(tmp_path, "edgeml_probe", "0.1.0")
    requirements = tmp_path / "requirements.txt"

    def install(hash_: str) -> subprocess.CompletedProcess[str]:
        requirements.write_text(f"edgeml-probe==0.1.0 --hash=sha256:{hash_}\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(tmp_path),
            "--require-hashes",
            "--target",
            str(tmp_path / "site"),
            "-r",
            str(requirements),
        ]
        return subprocess.run(command, capture_output=True, text=True, check=False)  # fmt: skip

    refused = install("0" * 64)
    assert refused.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stderr
    assert not (tmp_path / "site").exists()
    assert install(hashlib.sha256(wheel.read_bytes()).hexdigest()).returncode == 0
