"""device/preflight.sh, the check a user runs on a core device before the installer, run here under dash (POSIX sh,
what Debian and Raspberry Pi OS run as /bin/sh).

The requirements are the developer guide's ("Device requirements": a 64-bit or armv7l/aarch64 Linux, Java 8 or
later, sudo for the component user) and this kit's own (the publisher's Python, Docker from apt, the memory
cgroup the subscriber's limit needs). The build machine lacks some of them; the PATH is narrowed to take the rest
away without touching the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "device" / "preflight.sh"
DASH = shutil.which("dash")
BASICS = ("getconf", "uname", "awk", "df", "date", "id", "grep", "tr", "dirname")
SUMMARY = re.compile(
    r"^(\d+ check\(s\) failed: .+|this device is ready for the Greengrass installer .+)$", re.MULTILINE
)

pytestmark = pytest.mark.skipif(DASH is None, reason="dash (a POSIX sh) is not installed")


def preflight(env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The script run to its end; one that does not end in `timeout` is killed with whatever it started."""
    assert DASH is not None
    with subprocess.Popen(
        [DASH, str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def failures(out: str) -> dict[str, str]:
    """FAIL line -> its fix."""
    return dict(re.findall(r"^FAIL  (.+)\n      fix: (.+)$", out, flags=re.MULTILINE))


def warnings(out: str) -> list[str]:
    return re.findall(r"^warn  (.+)$", out, flags=re.MULTILINE)


def narrowed(tmp_path: Path, *keep: str, fakes: dict[str, str] | None = None, drop: str = "") -> dict[str, str]:
    """A PATH holding only the basic tools (less `drop`), `keep`, and `fakes` (name -> a sh script standing in for
    that tool): what a fresh device without the rest, or with that tool, looks like."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (*BASICS, *keep):
        found = shutil.which(tool)
        assert found, tool
        if tool != drop and tool not in (fakes or {}):
            (bin_dir / tool).symlink_to(found)
    for tool, body in (fakes or {}).items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path), "GREENGRASS_ROOT": str(tmp_path / "greengrass" / "v2")}


# Each of the preflight's nine checks, made to miss on a device built for it: (the check, fakes, the verdict's start).
# The fakes answer exactly the calls the script makes; anything else is the real tool.
DOCKER_WITHOUT_MEMORY_CGROUP = """case "$*" in
  info) exit 0 ;;
  *MemoryLimit*) echo false ;;
  *Server.Version*) echo 20.10.24 ;;
  *) exit 0 ;;
esac"""
GGC_USER_IN_DOCKER = f"""case "$*" in
  ggc_user) echo 'uid=998(ggc_user) gid=998(ggc_group) groups=998(ggc_group),999(docker)' ;;
  "-nG ggc_user") echo 'ggc_group docker' ;;
  *) exec {shutil.which("id")} "$@" ;;
esac"""
MISSES = [
    ("1 64-bit userland", {"getconf": "echo 32"}, "64-bit userland: this one is 32-bit"),
    ("2 Java too old", {"java": "echo 'java version \"1.7.0_80\"' >&2"}, "Java 8 or later: found '1.7.0_80'"),
    ("3 sudo missing", {}, "sudo: not found"),
    (
        "4 Python too old",
        {"python3": 'case "$2" in *sys.exit*) exit 1 ;; *) echo 3.9.2 ;; esac'},
        "python3 3.11 or later: found 3.9.2",
    ),
    ("5 Docker not answering", {"docker": "exit 1"}, "Docker: "),
    ("6 ggc_user in the docker group", {"id": GGC_USER_IN_DOCKER}, "ggc_user is in the docker group"),
    ("7 memory cgroup off", {"docker": DOCKER_WITHOUT_MEMORY_CGROUP}, "memory cgroup: off"),
    ("8 too little disk", {}, "free disk under "),
    ("9 a clock far off", {"date": 'case "$*" in "-u +%Y") echo 2001 ;; *) echo "Mon Jan  1 2001" ;; esac'}, "clock: "),
]


@pytest.mark.parametrize(("check", "fakes", "verdict"), MISSES, ids=[miss[0] for miss in MISSES])
def test_each_check_misses_on_a_device_that_lacks_it(
    tmp_path: Path, check: str, fakes: dict[str, str], verdict: str
) -> None:
    """The check's own FAIL (or, for the component user, its warning) with a fix; the exit status 1 for a FAIL."""
    env = narrowed(tmp_path, fakes=fakes)
    if check.startswith("8"):
        env["MIN_FREE_MB"] = str(10**12)
    done = preflight(env)
    said = [*failures(done.stdout), *warnings(done.stdout)]
    assert [line for line in said if line.startswith(verdict)], done.stdout
    assert done.returncode == 1  # this PATH also lacks sudo, so the run fails whatever the check under test did
    assert SUMMARY.search(done.stdout), done.stdout


@pytest.mark.parametrize("helper", BASICS)
def test_the_preflight_ends_with_its_verdict_when_a_helper_is_missing(tmp_path: Path, helper: str) -> None:
    """A device missing one of the basic tools the script calls still gets every check's verdict and the summary,
    never a hang (a free-disk loop once climbed folders with dirname for ever without it)."""
    done = preflight(narrowed(tmp_path, drop=helper), timeout=30)
    assert done.returncode == 1
    assert SUMMARY.search(done.stdout), done.stdout
    assert "clock" in done.stdout and "free disk" in done.stdout, done.stdout


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
