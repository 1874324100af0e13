"""What the next start of a killed core ends, and what it must never touch (localgg.leftovers): only the process
groups it wrote down, still led by the process it started, in its own pid namespace."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from localgg.leftovers import LEDGER, Ledger, live_members, reap, start_time
from tests.support.eventually import eventually


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_a_recorded_group_still_led_by_its_process_is_ended(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    Ledger(tmp_path).add(sleeper.pid)
    assert reap(tmp_path) == [sleeper.pid]
    eventually(lambda: sleeper.poll() is not None, what="the recorded group ended")
    assert not (tmp_path / LEDGER).exists()


def test_a_pid_given_to_another_process_since_is_left_alone(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    (tmp_path / LEDGER).write_text(f"namespace {os.readlink('/proc/self/ns/pid')}\n{sleeper.pid} 1\n")
    assert start_time(sleeper.pid) != "1"
    assert reap(tmp_path) == [] and live_members(sleeper.pid) == [sleeper.pid]


def test_a_ledger_of_another_pid_namespace_is_left_alone(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """An emulated device's core writes its ledger inside its container: its numbers are other processes here."""
    (tmp_path / LEDGER).write_text(f"namespace pid:[1]\n{sleeper.pid} {start_time(sleeper.pid)}\n")
    assert reap(tmp_path) == [] and live_members(sleeper.pid) == [sleeper.pid]
