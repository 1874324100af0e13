"""The Makefile and the README promise what they do."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(REPO), *args], capture_output=True, text=True, check=False)


def test_make_help_is_the_default_and_lists_every_target() -> None:
    done = make()
    assert done.returncode == 0
    listed = set(re.findall(r"make (\S+)", done.stdout))
    declared = set(re.findall(r"^([a-z-]+):.*## ", (REPO / "Makefile").read_text(), re.MULTILINE))
    assert declared <= listed
    assert {"help", "setup", "test", "lint"} <= listed


def test_make_setup_again_installs_nothing() -> None:
    stamp = REPO / ".venv" / ".installed"
    assert stamp.exists(), "the tests run from the environment `make setup` creates"
    before = stamp.stat().st_mtime_ns
    done = make("setup")
    assert done.returncode == 0, done.stderr
    assert "pip" not in done.stdout
    assert "Nothing to be done" in done.stdout or "is up to date" in done.stdout
    assert stamp.stat().st_mtime_ns == before


def test_readme_opens_with_the_two_commands() -> None:
    """The first code block is exactly the main job on the embedded default, then the tests."""
    text = (REPO / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make deploy", "make test"]
    assert text.index("```bash") < len("\n".join(text.splitlines()[:5]))
