"""The one list of machine packages: every consumer asks it, and a missing package is one clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.building import machine
from tests.conftest import REPO


def test_every_package_the_project_needs_is_present_after_setup() -> None:
    """.ci/run and the Makefile targets ran `python3 -m scripts.building.machine ensure`: nothing may be missing."""
    assert machine.missing() == []


def test_a_missing_package_without_the_right_to_install_names_it_and_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stand-in: a package whose command no machine has, and a user who is not root (monkeypatched, since the
    # tests run as root). Nothing is installed: the non-root path never calls apt-get.
    monkeypatch.setitem(machine.PACKAGES, "edgeml-absent", machine.Package("edgeml-absent", "edgeml-absent", "a test"))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(machine.MissingPackage) as caught:
        machine.ensure(["edgeml-absent", "make"])
    message = str(caught.value)
    assert "edgeml-absent (edgeml-absent: a test)" in message
    assert "`sudo apt-get install -y edgeml-absent`" in message
    assert "make" not in message.split("`")[1]  # only what is missing is named


def test_the_command_line_runs_on_the_bare_interpreter_before_any_environment() -> None:
    """.ci/run calls it with the system python3, before `make setup`: the module must need the standard library
    alone. `-S` keeps site-packages (the venv's) out."""
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import runpy, sys; sys.argv = ['m', 'list']; "
            "runpy.run_module('scripts.building.machine', run_name='__main__')",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines()}
    assert listed == set(machine.PACKAGES)
    assert "MISSING" not in done.stdout
