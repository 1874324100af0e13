"""Component lifecycles: restarts, BROKEN, environment, variables, shutdown order, no orphaned processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from localgg.deployment import DeploymentRequest
from localgg.lifecycle import State
from tests.localgg.harness import CoreThread, run_core, write_recipe
from tests.support.eventually import eventually


def wait_state(gg: CoreThread, name: str, *states: State, timeout: float = 20) -> State:
    async def waiting() -> State:
        return await gg.core.components[name].wait_for(*states, timeout=timeout)

    return gg.call(waiting(), timeout + 5)


def work(gg: CoreThread, name: str) -> Path:
    return gg.core.root / "work" / name


def alive(*, pid: int | None = None, pgid: int | None = None) -> bool:
    """Whether a live (not zombie) process has this pid or process group: this sandbox's PID 1 may not reap."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if state != "Z" and (int(stat.parent.name) == pid or group == pgid):
            return True
    return False


def eventually_dead(*, pid: int | None = None, pgid: int | None = None, timeout: float = 5) -> bool:
    return eventually(lambda: not alive(pid=pid, pgid=pgid), timeout, what=f"pid {pid} / group {pgid} gone")


def wait_file(path: Path, timeout: float = 10) -> str:
    eventually(lambda: path.exists() and path.read_text().strip(), timeout, what=f"{path} written")
    return path.read_text()


@pytest.mark.core_error(r"deployment FAILED: Flaky is BROKEN")
def test_three_errors_make_a_component_broken_with_recover_between(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Flaky", lifecycle={"Run": "echo run >> runs; exit 3", "Recover": "echo r >> recovered"})
    gg.deploy("Flaky")
    assert wait_state(gg, "Flaky", State.BROKEN) is State.BROKEN
    assert (work(gg, "Flaky") / "runs").read_text().split() == ["run"] * 3
    assert (work(gg, "Flaky") / "recovered").read_text().split() == ["r"] * 2
    log = (gg.core.root / "logs" / "Flaky.log").read_text()
    assert "Run exited with 3" in log and "state BROKEN" in log


@pytest.mark.core_error(r"deployment FAILED: Slow is BROKEN")
def test_a_step_timeout_is_an_error(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Slow", lifecycle={"Install": {"Script": "sleep 30", "Timeout": 0.3}, "Run": "true"})
    gg.deploy("Slow")
    assert wait_state(gg, "Slow", State.BROKEN, timeout=30) is State.BROKEN
    assert "Install timed out" in (gg.core.root / "logs" / "Slow.log").read_text()


def test_environment_and_recipe_variables(gg: CoreThread, tmp_path: Path) -> None:
    write_recipe(
        gg.recipes,
        "Env",
        configuration={"greeting": "hi there", "n": {"x": 1}},
        lifecycle={
            "Setenv": {"FROM_RECIPE": "{configuration:/greeting}"},
            "Run": "env > env.txt; echo '{configuration:/n}|{work:path}|{iot:thingName}|"
            "{kernel:rootPath}|{artifacts:path}|{unknown:thing}' > vars.txt",
        },
    )
    gg.deploy("Env")
    wait_state(gg, "Env", State.FINISHED)
    env = dict(line.split("=", 1) for line in (work(gg, "Env") / "env.txt").read_text().splitlines() if "=" in line)
    token = gg.core.tokens.issue("Env")
    assert env["SVCUID"] == env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == token
    assert len(token) == 16 and token.isupper()
    assert env["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"] == str(gg.core.socket)
    assert env["AWS_IOT_THING_NAME"] == "test-thing" and env["AWS_REGION"] == "eu-west-1"
    assert env["FROM_RECIPE"] == "hi there"
    root = gg.core.root
    assert (work(gg, "Env") / "vars.txt").read_text().strip() == (
        f'{{"x": 1}}|{root}/work/Env|test-thing|{root}|{root}/packages/artifacts/Env/1.0.0|{{unknown:thing}}'
    )


def test_startup_services_run_until_shutdown(gg: CoreThread) -> None:
    write_recipe(
        gg.recipes,
        "Daemon",
        lifecycle={"Startup": "sleep 300 & echo $! > pid", "Shutdown": "kill $(cat pid); echo stopped > shutdown"},
    )
    gg.deploy("Daemon")
    assert wait_state(gg, "Daemon", State.RUNNING) is State.RUNNING
    pid = int(wait_file(work(gg, "Daemon") / "pid"))
    assert alive(pid=pid)
    gg.call(gg.core.stop())
    assert (work(gg, "Daemon") / "shutdown").read_text().strip() == "stopped"
    assert eventually_dead(pid=pid), "the Startup service outlived its Shutdown"


def test_dependencies_start_first_and_stop_last(gg: CoreThread) -> None:
    order = gg.root / "order.txt"
    for name, deps in (("Base", None), ("App", {"Base": {"VersionRequirement": ">=1.0.0", "DependencyType": "HARD"}})):
        write_recipe(
            gg.recipes,
            name,
            dependencies=deps,
            lifecycle={
                "Run": f"echo start-{name} >> {order}; exec sleep 300",
                "Shutdown": f"echo stop-{name} >> {order}",
            },
        )
    gg.deploy("App", "Base")
    wait_state(gg, "App", State.RUNNING)
    gg.call(gg.core.stop())
    assert order.read_text().split() == ["start-Base", "start-App", "stop-App", "stop-Base"]


def test_stopping_leaves_no_orphaned_processes(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Forker", lifecycle={"Run": "sleep 300 & sleep 301 & echo $$ > pgid; wait"})
    gg.deploy("Forker")
    pgid = int(wait_file(work(gg, "Forker") / "pgid"))
    assert alive(pgid=pgid)
    gg.call(gg.core.stop())
    assert eventually_dead(pgid=pgid)


def test_sigterm_stops_every_component_and_exits_zero(tmp_path: Path) -> None:
    root = Path(f"/tmp/gg-cli-{os.getpid()}")
    recipes = tmp_path / "recipes"
    write_recipe(recipes, "Svc", lifecycle={"Run": "echo $$ > pgid; exec sleep 300", "Shutdown": "echo bye > bye"})
    core = run_core(root, recipes, "--merge", "Svc=1.0.0")
    try:
        pgid = int(wait_file(root / "work" / "Svc" / "pgid"))
        core.send_signal(signal.SIGTERM)
        assert core.wait(timeout=30) == 0
        assert (root / "work" / "Svc" / "bye").read_text().strip() == "bye"
        assert eventually_dead(pgid=pgid)
        assert not (root / "ipc.socket").exists()
        assert "Svc" in (root / "logs" / "greengrass.log").read_text()
    finally:
        core.kill()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_a_lifecycle_reads_its_dependencies_and_restarts_when_what_it_read_changes(gg: CoreThread) -> None:
    """`{Dependency:artifacts:path}` and `{Dependency:configuration:/key}` (developer guide, component recipe
    reference, "Recipe variables": `component_dependency_name` names this component or one it depends on; any other
    stays as written). The nucleus resolves every lifecycle again on each deployment, so a component whose
    resolved lifecycle changes because a dependency got a new version restarts, and one whose does not runs on."""
    for version, model_file in (("1.0.0", "a.json"), ("1.1.0", "b.json")):
        write_recipe(gg.recipes, "Model", version=version, configuration={"modelFile": model_file})
    write_recipe(gg.recipes, "Other", configuration={"x": "not mine"})
    write_recipe(
        gg.recipes,
        "App",
        dependencies={"Model": {"VersionRequirement": ">=1.0.0 <2.0.0", "DependencyType": "HARD"}},
        lifecycle={
            "Run": "echo '{Model:artifacts:path}/{Model:configuration:/modelFile} {Other:configuration:/x}' "
            ">> seen.txt; exec sleep 300"
        },
    )
    seen = work(gg, "App") / "seen.txt"

    def deploy(model: str) -> None:
        # A new version's defaults do not replace a configuration already on the device (updates are patches to
        # it): a deployment that wants them resets the configuration ("" is all of it).
        wanted = {"App": "1.0.0", "Model": model, "Other": "1.0.0"}
        reset = {"Model": {"RESET": [""], "MERGE": {}}}
        gg.call(gg.core.deploy(DeploymentRequest(gg.recipes, None, wanted, (), reset)))

    deploy("1.0.0")
    assert wait_state(gg, "App", State.RUNNING) is State.RUNNING
    artifacts = gg.core.root / "packages" / "artifacts" / "Model"
    assert wait_file(seen).splitlines() == [f"{artifacts}/1.0.0/a.json {{Other:configuration:/x}}"]
    deploy("1.1.0")
    assert wait_state(gg, "App", State.RUNNING) is State.RUNNING
    eventually(lambda: len(seen.read_text().splitlines()) >= 2, 30, what=f"a second line in {seen}")
    assert seen.read_text().splitlines()[1] == f"{artifacts}/1.1.0/b.json {{Other:configuration:/x}}"
    running = gg.core.components["App"]
    deploy("1.1.0")  # nothing it reads changed: it runs on, the same process
    assert gg.core.components["App"] is running and running.state is State.RUNNING


def test_a_component_that_writes_without_end_costs_a_bounded_disk(gg: CoreThread) -> None:
    """As the nucleus rotates a component's log (developer guide, "Configure logging": every hour or past
    fileSizeKB, as <name>_<yyyy_MM_dd_HH>_<index>.log, the oldest deleted past totalLogsSizeKB), scaled down here
    to 16 KB files and 64 KB in all: a component printing 20,000 lines leaves its newest lines in <name>.log, a few
    rotated files named as the nucleus names them, and no more than the bound on disk."""
    gg.core.log_limits = (16 << 10, 64 << 10)
    write_recipe(gg.recipes, "Chatty", lifecycle={"Run": "seq 1 20000 | sed 's/^/line /'"})
    gg.deploy("Chatty")
    eventually(lambda: gg.core.components["Chatty"].state is State.FINISHED, 60)
    logs = gg.core.root / "logs"
    files = sorted(p for p in logs.iterdir() if p.name.startswith("Chatty"))
    rotated = [p for p in files if p.name != "Chatty.log"]
    assert rotated and all(re.fullmatch(r"Chatty_\d{4}_\d\d_\d\d_\d\d_\d+\.log", p.name) for p in rotated)
    assert sum(p.stat().st_size for p in files) <= (64 << 10) + (16 << 10)
    assert (logs / "Chatty.log").stat().st_size <= 16 << 10
    assert "line 20000" in (logs / "Chatty.log").read_text()
