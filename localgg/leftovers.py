"""The process groups a core's components started, written down so that the next start of a core that was killed
(SIGKILL, a crash, a power cut) ends what it left running.

A real core runs as a systemd service (the installer's `--setup-system-service true`, the nucleus's SystemdUtils),
and systemd ends every process of the unit's control group when its main process dies (systemd.kill(5):
KillMode=control-group, the default): a restarted nucleus never finds its old components beside the new ones.
localgg is a plain process, so it keeps the list itself: a ledger file under its root, one `<group> <start time>`
line per process group, the start time (from /proc/<pid>/stat) telling the group's own leader from a later process
that was given the same pid. Its first line names the pid namespace the numbers belong to: a core in a container
(an emulated device) writes numbers that mean other processes outside it, and a ledger of another namespace is
left alone. A group is written down right after its leader is spawned: a core killed in that instant leaves the
group unrecorded, the one gap a unit's control group does not have.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("localgg.leftovers")
LEDGER = "process-groups"
GRACE = 5.0  # SIGTERM, then SIGKILL: as a component's stop (localgg.lifecycle.STOP_GRACE)


def _namespace() -> str:
    return os.readlink("/proc/self/ns/pid")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first), None when there is no such process."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22 of stat(5), counted from the state (field 3)


def live_members(group: int) -> list[int]:
    """The live processes of a process group (zombies do not count: where PID 1 does not reap, they linger)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields and int(fields[2]) == group and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


class Ledger:
    """The groups of this core's running scripts, kept on disk as they start and end."""

    def __init__(self, root: Path) -> None:
        self.path = root / LEDGER
        self._groups: dict[int, str] = {}

    def add(self, group: int) -> None:
        self._groups[group] = start_time(group) or "?"
        self._write()

    def discard(self, group: int) -> None:
        if self._groups.pop(group, None) is not None:
            self._write()

    def _write(self) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"namespace {_namespace()}\n")
            out.writelines(f"{group} {started}\n" for group, started in sorted(self._groups.items()))
        partial.replace(self.path)


def _recorded(path: Path) -> dict[int, str]:
    """The ledger's groups, none when it was written in another pid namespace than ours."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    if not lines or lines[0] != f"namespace {_namespace()}":
        log.info("%s was written in another pid namespace: its numbers are not our processes", path)
        return {}
    groups = {}
    for line in lines[1:]:
        group, _, started = line.partition(" ")
        if group.isdigit():
            groups[int(group)] = started
    return groups


def _ours(group: int, started: str) -> bool:
    """A live group that is still the one recorded: its leader is the process we started, or the leader is gone and
    its members are left (Linux gives no new process a pid that is still a group's id)."""
    leader = start_time(group)
    return bool(live_members(group)) and (leader is None or leader == started)


def reap(root: Path) -> list[int]:
    """End every group a core at `root` recorded and left running (SIGTERM, SIGKILL after GRACE); the groups ended."""
    path = root / LEDGER
    left = [group for group, started in _recorded(path).items() if _ours(group, started)]
    for group in left:
        log.warning("process group %d was left by a core that did not stop: ending it", group)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while any(live_members(group) for group in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    for group in left:
        if live_members(group):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return left


def reap_under(folder: Path) -> list[int]:
    """`reap` for every core whose root is at or under `folder` (a dead stack's devices)."""
    return [group for ledger in sorted(folder.rglob(LEDGER)) for group in reap(ledger.parent)]
