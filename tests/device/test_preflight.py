"""device/preflight.sh, the check a user runs on a core device before the installer, run here under dash (POSIX sh,
what Debian and Raspberry Pi OS run as /bin/sh).

The requirements are the developer guide's ("Device requirements": a 64-bit or armv7l/aarch64 Linux, Java 8 or
later, sudo for the component user) and this kit's own (the publisher's Python, Docker from apt, the memory
cgroup the subscriber's limit needs). The build machine lacks some of them; the PATH is narrowed to take the rest
away without touching the machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "device" / "preflight.sh"
DASH = shutil.which("dash")
BASICS = ("getconf", "uname", "awk", "df", "date", "id", "grep", "tr", "dirname")

pytestmark = pytest.mark.skipif(DASH is None, reason="dash (a POSIX sh) is not installed")


def preflight(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert DASH is not None
    return subprocess.run([DASH, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)


def failures(out: str) -> dict[str, str]:
    """FAIL line -> its fix."""
    return dict(re.findall(r"^FAIL  (.+)\n      fix: (.+)$", out, flags=re.MULTILINE))


def narrowed(tmp_path: Path, *keep: str) -> dict[str, str]:
    """A PATH holding only the basic tools and `keep`: what a fresh device without the rest looks like."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (*BASICS, *keep):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path), "GREENGRASS_ROOT": str(tmp_path / "greengrass" / "v2")}


def test_it_is_posix_sh() -> None:
    assert DASH is not None
    subprocess.run([DASH, "-n", str(SCRIPT)], check=True)


def test_on_this_machine_every_miss_has_a_fix_and_the_exit_status_says_whether_any_missed() -> None:
    done = preflight()
    lines = [line for line in done.stdout.splitlines() if line and not line.startswith("      ")]
    verdicts = [line.split()[0] for line in lines[:-1]]  # the last line is the summary
    assert set(verdicts) <= {"ok", "FAIL", "warn"}, done.stdout
    assert len(failures(done.stdout)) == verdicts.count("FAIL")
    assert done.returncode == (1 if "FAIL" in verdicts else 0), done.stdout


def test_a_device_without_java_python_sudo_or_docker_is_told_what_to_install(tmp_path: Path) -> None:
    done = preflight(narrowed(tmp_path))
    assert done.returncode == 1
    missed = failures(done.stdout)
    fixes = {name.split(":")[0]: fix for name, fix in missed.items()}
    assert "default-jre-headless" in fixes["Java"]
    assert "python3" in fixes["python3"]
    assert "sudo" in fixes["sudo"]
    assert "docker.io" in fixes["Docker"]
    assert f"{len(missed)} check(s) failed" in done.stdout


def test_too_little_disk_is_a_failure_naming_the_folder(tmp_path: Path) -> None:
    env = {**narrowed(tmp_path), "MIN_FREE_MB": str(10**12)}
    done = preflight(env)
    assert done.returncode == 1
    disk = [name for name in failures(done.stdout) if name.startswith("free disk")]
    assert disk and env["GREENGRASS_ROOT"] in disk[0], done.stdout
