"""The twin as strict as a core device: components run as the default component user through sudo, privileged
steps as root, and the files a component gets are owned and moded as the nucleus sets them.

Sources (aws-greengrass-nucleus): UnixPlatform.SudoDecorator (`sudo -n -E -H -u USER -g GROUP --`, undecorated when
the core already is that user), RunWithPathOwnershipHandler.updateOwner (the files inside the artifact folders and
the work folder are the component user's; the artifact folders are not), Permissions.setArtifactPermission and
componentmanager.models.Permission.toFileSystemPermission (modes), UnixPlatform.createUser/createGroup (`useradd -r
-m`, `groupadd -r` for a missing default user), Permissions.setIpcSocketPermission (everyone reads and writes the
socket).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from localgg.lifecycle import State
from localgg.permissions import own_root
from localgg.recipe import Paths
from localgg.runwith import ROOT, RunWith, decorate
from tests.conftest import machine_command
from tests.localgg.harness import CoreThread, write_recipe
from tests.support.eventually import eventually

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root, as the nucleus does")


@pytest.fixture(scope="module")
def ggc_user() -> RunWith:
    machine_command("sudo")  # every core device has it; the nucleus switches users with it
    return RunWith.of("ggc_user:ggc_group", create=True)


@pytest.fixture
def device(ggc_user: RunWith) -> Iterator[CoreThread]:
    core = CoreThread(run_with=ggc_user)
    yield core
    core.close()


def test_the_sudo_decoration_is_the_nucleus_s(ggc_user: RunWith) -> None:
    assert decorate(["sh", "-c", "x"], ggc_user, ROOT) == [
        "sudo", "-n", "-E", "-H", "-u", "ggc_user", "-g", "ggc_group", "--", "sh", "-c", "x"
    ]  # fmt: skip
    assert decorate(["sh", "-c", "x"], ROOT, ROOT) == ["sh", "-c", "x"]


def test_steps_run_as_the_component_user_and_privileged_ones_as_root(device: CoreThread, ggc_user: RunWith) -> None:
    write_recipe(
        device.recipes,
        "Who",
        lifecycle={
            "Install": {"RequiresPrivilege": True, "Script": "id -u > privileged"},
            "Run": "id -u > plain; id -gn >> plain; touch mine",
        },
    )
    device.deploy("Who")
    eventually(lambda: device.core.components["Who"].state is State.FINISHED)
    work = Paths(device.core.root, "Who", "1.0.0").work
    assert (work / "plain").read_text().split() == [str(ggc_user.uid), "ggc_group"]
    assert ggc_user.uid != 0
    assert (work / "privileged").read_text().strip() == "0"
    assert (work / "mine").stat().st_uid == ggc_user.uid  # its work folder is its own
    assert work.stat().st_uid == ggc_user.uid


def test_artifacts_are_the_component_user_s_with_the_recipe_s_modes(
    device: CoreThread, ggc_user: RunWith, tmp_path: Path
) -> None:
    folder = tmp_path / "Art" / "1.0.0"
    folder.mkdir(parents=True)
    for name in ("owner.txt", "all.txt", "tool.sh"):
        (folder / name).write_text("echo hi\n")
    write_recipe(
        device.recipes,
        "Art",
        artifacts=[
            {"URI": "s3://b/owner.txt"},
            {"URI": "s3://b/all.txt", "Permission": {"Read": "ALL"}},
            {"URI": "s3://b/tool.sh", "Permission": {"Execute": "OWNER"}},
        ],
        lifecycle={"Run": "sh {artifacts:path}/tool.sh > out && cat {artifacts:path}/owner.txt >> out"},
    )
    folder.parent.parent.chmod(0o700)  # whatever the source's modes, the store's are the nucleus's
    device.deploy("Art", artifact_dir=tmp_path)
    eventually(lambda: device.core.components["Art"].state is State.FINISHED)
    store = Paths(device.core.root, "Art", "1.0.0").artifacts
    modes = {p.name: (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in store.iterdir()}
    assert modes == {
        "owner.txt": (0o440, ggc_user.uid),
        "all.txt": (0o444, ggc_user.uid),
        "tool.sh": (0o550, ggc_user.uid),
    }
    assert (stat.S_IMODE(store.stat().st_mode), store.stat().st_uid) == (0o755, 0)  # not the component's to fill
    assert (Paths(device.core.root, "Art", "1.0.0").work / "out").read_text() == "hi\necho hi\n"


@pytest.mark.core_error(r"deployment FAILED: NoPrivilege is BROKEN")
@pytest.mark.docker
def test_a_component_without_the_privilege_cannot_reach_docker(device: CoreThread) -> None:
    """The developer guide's "Run a Docker container" requirements: the user that runs docker must be root or in the
    docker group. ggc_user is neither, so a recipe that calls docker without RequiresPrivilege fails on a device, and
    here: three errors and the component is BROKEN."""
    write_recipe(device.recipes, "NoPrivilege", lifecycle={"Run": "docker ps"})
    device.deploy("NoPrivilege")
    eventually(lambda: device.core.components["NoPrivilege"].state is State.BROKEN, timeout=30)
    log = (device.core.root / "logs" / "NoPrivilege.log").read_text()
    assert "permission denied" in log.lower()


def test_the_ipc_socket_is_open_to_every_component_user(device: CoreThread) -> None:
    assert stat.S_IMODE(device.core.socket.stat().st_mode) == 0o666


def test_a_manifest_for_any_runtime_fits_the_classic_nucleus(device: CoreThread) -> None:
    """PlatformResolver reports `runtime: aws_nucleus_classic` beside os and architecture; `*` accepts any label."""
    write_recipe(device.recipes, "AnyRuntime", platform={"os": "linux", "runtime": "*"}, lifecycle={"Run": "true"})
    device.deploy("AnyRuntime")
    eventually(lambda: device.core.components["AnyRuntime"].state is State.FINISHED)
    write_recipe(device.recipes, "LiteOnly", platform={"os": "linux", "runtime": "aws_nucleus_lite"})
    with pytest.raises(Exception, match="no manifest for this platform"):
        device.deploy("LiteOnly")


def test_sudo_drops_what_its_env_delete_names_as_on_a_device(device: CoreThread) -> None:
    """`sudo -E` keeps the environment but for what sudo's env_delete names (PYTHONPATH, LD_*, ...): a Setenv
    PYTHONPATH reaches a root core's own steps but not a component user's, which is why the publisher's recipe runs
    from its folder instead."""
    write_recipe(
        device.recipes,
        "Env",
        lifecycle={"Setenv": {"PYTHONPATH": "/somewhere", "KEPT": "yes"}, "Run": 'echo "$PYTHONPATH|$KEPT" > env'},
    )
    device.deploy("Env")
    eventually(lambda: device.core.components["Env"].state is State.FINISHED)
    assert (Paths(device.core.root, "Env", "1.0.0").work / "env").read_text().strip() == "|yes"


@pytest.mark.parametrize("hijack", ["another user's folder", "group-writable", "a link"])
def test_a_root_someone_else_could_change_is_refused(tmp_path: Path, ggc_user: RunWith, hijack: str) -> None:
    """An attacker who makes the core's folder first (a world-writable parent such as /tmp lets anyone) would have the
    core, as root, write its status and logs through links they plant. localgg refuses such a folder before writing
    anything, and makes a missing one 0755: its components, as ggc_user, go through it as through /greengrass/v2."""
    from localgg.cli import main

    root = tmp_path / "gg"
    if hijack == "a link":
        (tmp_path / "elsewhere").mkdir()
        root.symlink_to(tmp_path / "elsewhere")
    else:
        root.mkdir()
        if hijack == "group-writable":
            root.chmod(0o775)
        else:
            os.chown(root, ggc_user.uid, ggc_user.gid)
    assert main(["run", "--root", str(root), "--recipe-dir", str(tmp_path), "--artifact-dir", str(tmp_path)]) == 2
    assert not (root / "logs").exists()
    assert stat.S_IMODE(own_root(tmp_path / "fresh").stat().st_mode) == 0o755


@pytest.mark.parametrize("as_user", [True, False], ids=["ggc_user", "the core's own user"])
def test_no_secret_of_the_operators_shell_reaches_a_component(
    ggc_user: RunWith, monkeypatch: pytest.MonkeyPatch, as_user: bool
) -> None:
    """The attack: keys exported in the shell that starts the core. A nucleus installed as a system service starts
    from systemd's environment (localgg.environment: UnixExec hands a step the nucleus's own environment, and
    systemd gives a service a fixed PATH and the locale), so neither a component run as ggc_user nor one run as the
    core's own user sees them; each sees what the nucleus sets it, and HOME is the run-as user's (sudo -H)."""
    from localgg.environment import SERVICE_PATH

    secrets = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG", "GITHUB_TOKEN": "ghp_leaked", "SSH_AUTH_SOCK": "/x"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    core = CoreThread(run_with=ggc_user if as_user else None)
    try:
        write_recipe(core.recipes, "Env", lifecycle={"Run": "env > env"})
        core.deploy("Env")
        eventually(lambda: core.core.components["Env"].state is State.FINISHED)
        lines = (Paths(core.core.root, "Env", "1.0.0").work / "env").read_text().splitlines()
    finally:
        core.close()
    seen = dict(line.split("=", 1) for line in lines if "=" in line)
    assert not set(secrets) & set(seen), sorted(seen)
    assert not any(value in "\n".join(lines) for value in secrets.values())
    assert seen["PATH"] == SERVICE_PATH
    assert seen["HOME"] == (os.path.expanduser(f"~{ggc_user.user}") if as_user else os.path.expanduser("~"))
    assert {"SVCUID", "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT", "AWS_REGION"} <= set(seen)
