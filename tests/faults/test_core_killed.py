"""localgg killed with SIGKILL in the middle of a deployment, then started again on the same root, as a device's
nucleus is after a crash. A real core runs as a systemd service, and systemd ends every process of the unit when
its main process dies (systemd.kill(5), KillMode=control-group; the nucleus installs the unit, SystemdUtils), so a
restarted nucleus never finds its old components beside the new ones. localgg keeps a ledger of its process groups
for the same end (localgg.leftovers). Nothing lost: no process of the killed run is left, and each component runs
once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from localgg.leftovers import LEDGER, live_members, reap
from tests.localgg.harness import run_core, write_recipe
from tests.support.eventually import eventually

MARK = "4243"  # a sleep nobody else runs: how many of the component's Run there are


def runs() -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == f"sleep\0{MARK}\0".encode():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_a_core_killed_mid_deployment_leaves_nothing_behind_once_started_again(tmp_path: Path) -> None:
    root = Path(f"/tmp/gg-killed-{os.getpid()}")  # short: the IPC socket's path has a length limit
    recipes = tmp_path / "recipes"
    # Install leaves a daemon (`sleep &`) in its process group, as scripts' children are; Run is the component.
    write_recipe(
        recipes,
        "Svc",
        lifecycle={"Install": "sleep 4242 & echo $$ >> install-groups", "Run": f"exec sleep {MARK}"},
    )
    core = run_core(root, recipes, "--merge", "Svc=1.0.0")
    restarted = None
    try:
        (old,) = eventually(runs, timeout=30, what="the component running")
        first = int((root / "work" / "Svc" / "install-groups").read_text().split()[0])
        assert f"\n{first} " in (root / LEDGER).read_text()
        # The kill lands once the core has written Run's group down (its pid: it leads the group it started), the
        # barrier the core gives; a kill in the instant between the spawn and that write is the one gap a
        # systemd unit's control group does not have (said in localgg.leftovers).
        eventually(lambda: f"\n{old} " in (root / LEDGER).read_text(), timeout=30, what="Run's group in the ledger")
        core.send_signal(signal.SIGKILL)
        core.wait(timeout=10)
        assert live_members(first) and runs() == [old], "a SIGKILLed core leaves its scripts running"
        restarted = run_core(root, recipes, "--merge", "Svc=1.0.0")
        eventually(lambda: not live_members(first), timeout=30, what="the killed run's daemon ended")
        (new,) = eventually(lambda: [pid for pid in runs() if pid != old], timeout=60, what="the component again")
        assert runs() == [new]  # once: the killed run's is gone
    finally:
        for process in (core, restarted):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        reap(root)  # whatever a failed check left
        subprocess.run(["rm", "-rf", str(root)], check=False)
    eventually(lambda: not runs(), timeout=30, what="nothing left once the core stopped")
