from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

TERRAFORM = REPO / "scripts" / "terraform.sh"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def terraform() -> Run:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on the PATH (.ci/run says so loudly)")
    probe = subprocess.run([str(TERRAFORM), "version"], capture_output=True, text=True, check=False)
    rc = (REPO / "build" / "terraform.rc").read_text()
    if probe.returncode != 0 or "filesystem_mirror" not in rc:
        pytest.skip("no offline mirror of the hashicorp/aws provider on this machine (.ci/run says so loudly)")

    def run(
        *args: str, cwd: Path = REPO / "terraform", env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        # Always under a timeout: the AWS provider retries some failures for many minutes.
        return subprocess.run(
            [str(TERRAFORM), f"-chdir={cwd}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TF_IN_AUTOMATION": "1", **(env or {})},
            check=False,
        )

    return run
