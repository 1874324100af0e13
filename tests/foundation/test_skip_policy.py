"""The run fails on a skip this machine should not need (tests/conftest.py's allowed_skips): a suite that silently
did not run is a red CI. Run as pytest runs the project's suites, with the project's conftest as a plugin, on test
files written here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(folder: Path, body: str, *flags: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_probe.py").write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "-o", "addopts=",
         "--rootdir", str(folder), *flags, str(folder / "test_probe.py")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("flags", [(), ("-n", "2")], ids=["alone", "on workers"])
def test_a_skip_the_machine_should_not_need_fails_the_run(tmp_path: Path, flags: tuple[str, ...]) -> None:
    done = run(
        tmp_path, "import pytest\n\ndef test_skips():\n    pytest.skip('terraform is not on the PATH')\n", *flags
    )
    assert done.returncode == 1, done.stdout
    assert "1 test(s) skipped that this machine must run" in done.stdout
    assert "test_skips: terraform is not on the PATH" in done.stdout


def test_a_run_without_skips_passes(tmp_path: Path) -> None:
    done = run(tmp_path, "def test_passes():\n    pass\n")
    assert done.returncode == 0, done.stdout
