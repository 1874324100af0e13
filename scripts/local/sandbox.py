"""The local cloud as the tools see it: started in the background when it is not running, found again by the next
command through build/local/stack.json, stopped by `destroy`.

It keeps everything in memory, so a stack that is gone (a reboot, a kill) takes its Terraform state with it: a
new one starts from a clean folder rather than next to a state that describes resources nobody has any more.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from localcloud import info
from localcloud.info import STATE_FILE, StackInfo
from scripts import isolation, product
from scripts.aws import calling, client
from scripts.building import engine, machine
from scripts.errors import ToolError
from scripts.local import localdevices
from scripts.local.localdevices import LocalFleet
from scripts.platforms import Platform, this_machine
from scripts.product import REPO
from scripts.progress import Progress

ROOT = REPO / "build" / "local"
LOG = "stack.log"


class LocalCloudError(ToolError):
    pass


def find(root: Path = ROOT) -> StackInfo | None:
    return info.find(root)


def left_running(root: Path = ROOT) -> str | None:
    """What a failed command says of the stack it leaves running."""
    running = find(root)
    if running is None:
        return None
    return (
        f"the local cloud is still running (pid {running.pid}): fix the above and run the command again, or stop it "
        "and everything in it with `make destroy` (in any shell: it never reads your AWS settings)"
    )


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def predictions_flowing(thing: str, log: Path, since: int, timeout: float) -> list[str]:
    """A prediction the device's subscriber writes after `since` (bytes into its log)."""
    found = product.follow_predictions(log, 1, timeout, since)
    if not found:
        raise LocalCloudError(
            f"{thing} runs the deployment, but its subscriber wrote no prediction within {timeout:.0f}s: see {log}"
        )
    return found


def _log_tail(root: Path, lines: int = 15) -> str:
    try:
        return "\n".join((root / LOG).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure(
    progress: Progress,
    root: Path = ROOT,
    devices: tuple[Platform, ...] | None = None,
    fleet: LocalFleet | None = None,
    name_prefix: str = "edgeml",
    timeout: float = 60.0,
) -> StackInfo:
    """The running stack, or a new one started in the background (it outlives this command) with a core device for
    each of `devices` (default: one, this machine's) and `fleet`'s hollow devices (default: none), joining the
    thing group of the stack Terraform makes with `name_prefix` (its hollow devices join it; the real ones join as the
    installer provisions them, scripts/cloud/device.py)."""
    running = find(root)
    if running is not None:
        progress(f"local cloud: running (pid {running.pid}, {running.aws})")
        running_platforms = sorted(device.platform for device in running.devices.values())
        if devices is not None and running_platforms != sorted(platform.docker for platform in devices):
            raise LocalCloudError(
                f"the local cloud runs core devices for {', '.join(running_platforms)}, not the ones asked for: "
                "devices are chosen when it starts (`make destroy`, then deploy again)"
            )
        if fleet is not None and fleet.hollow != running.hollow:
            raise LocalCloudError(
                f"the local cloud runs {running.hollow} hollow devices, not {fleet.hollow}: devices are chosen when it "
                "starts (`make destroy`, then deploy again)"
            )
        return running
    # What a first start needs, in one apt-get run (a MissingPackage is a ToolError: one line from the CLI): the
    # engine, the base image's debootstrap, the registry and broker; for another CPU's device, emulation too.
    emulating = any(platform != this_machine() for platform in devices or ())
    machine.ensure(
        [
            "docker.io",
            "debootstrap",
            "docker-registry",
            "mosquitto",
            "sudo",
            *(["iproute2", "qemu-user-static", "binfmt-support", "buildah"] if emulating else []),
        ],
        progress,
    )
    client = engine.ensure_engine(progress)  # the core devices pull their images through it: none runs on a new machine
    emulated = [
        f"--emulated-device={platform.docker}={localdevices.ensure_image(client, platform, progress)}"
        for platform in devices or ()
        if platform != this_machine()
    ]
    if root.exists():
        # What a stack that died left is kept until the next start, its logs with it: the last words of a crash;
        # what its components left running is ended, as systemd ends a dead nucleus's unit.
        _reap(root, progress)
        previous = _previous(root)
        progress(f"local cloud: not running; its folder moved to {previous} (its state went with it)")
        shutil.rmtree(previous, ignore_errors=True)
        root.rename(previous)
    root.mkdir(mode=0o700, parents=True)
    progress(
        "local cloud: starting moto, a registry, an MQTT broker, the Greengrass endpoint and "
        + (f"{len(emulated) + 1} core devices ({len(emulated)} emulated)" if emulated else "a core device")
        + (f" and {fleet.hollow} hollow ones" if fleet and fleet.hollow else "")
    )
    # Only its owner reads the log: the local cloud's keys may appear in what its servers print.
    with os.fdopen(os.open(root / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                *info.COMMAND,
                "--root",
                str(root),
                f"--thing-group={name_prefix}-cores",
                *emulated,
                *(fleet or LocalFleet()).arguments(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the terminal's Ctrl-C or with make
            cwd=REPO,
            env=isolation.environment({}),  # the stack, its cores and their components: none of the user's AWS settings
        )
    timeout += localdevices.START_TIMEOUT * len(emulated)
    started = time.monotonic()
    while (started_info := StackInfo.load(root)) is None:
        if process.poll() is not None or time.monotonic() > started + timeout:
            process.kill()
            raise LocalCloudError(
                f"the local cloud did not start (see {root / LOG}):\n{_log_tail(root)}"
                if process.returncode is not None
                else f"the local cloud did not answer within {timeout:.0f}s (see {root / LOG})"
            )
        time.sleep(0.1)
    progress(f"local cloud: ready in {time.monotonic() - started:.1f}s (pid {started_info.pid}, log {root / LOG})")
    return started_info


def install(cloud: StackInfo, root: Path, thing: str, installer_args: list[str], progress: Progress) -> None:
    """A device of the stack provisioned as the Greengrass installer does, with the installer's own flags
    (`python -m localcloud install`): it joins once its identity is written. Nothing to do when it has one."""
    if (cloud.identity(thing) / "identity.json").exists():
        return
    progress(f"{thing}: provisioning it as the Greengrass installer does (make device THING={thing})")
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "install", "--stack", str(root), "--", *installer_args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=isolation.environment({}),
        check=False,
    )
    if done.returncode != 0:
        raise LocalCloudError(f"{thing} could not be provisioned: {(done.stderr or done.stdout).strip()[-1500:]}")


def stop(progress: Progress, root: Path = ROOT, timeout: float = 180.0) -> bool:
    """Stop the stack (its core stops every component first) and delete its folder, and a dead one's; False if none
    was running."""
    running = find(root)
    if running is not None:
        progress(f"local cloud: stopping pid {running.pid}")
        os.kill(running.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not info.exited(running.pid):  # not `find`: an exiting process's cmdline is already empty
            if time.monotonic() > deadline:
                raise LocalCloudError(f"the local cloud (pid {running.pid}) did not stop within {timeout:.0f}s")
            time.sleep(0.1)
        if (root / STATE_FILE).exists():
            raise LocalCloudError(f"the local cloud stopped without cleaning up; see {root / LOG}")
    for folder in (root, _previous(root)):
        if folder.exists():
            if running is None or folder != root:
                _reap(folder, progress)
            shutil.rmtree(folder)
    return running is not None


def _reap(folder: Path, progress: Progress) -> None:
    """End what the cores of a stack that died under `folder` left running (`python -m localcloud reap`)."""
    done = subprocess.run(
        [sys.executable, "-m", "localcloud", "reap", "--root", str(folder)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=isolation.environment({}),
        check=False,
    )
    for line in done.stdout.splitlines():
        progress(f"local cloud: {line}")
    if done.returncode != 0:
        raise LocalCloudError(f"what the stack under {folder} left running could not be ended: {done.stderr.strip()}")


def _previous(root: Path) -> Path:
    """Where the folder of a stack that died waits, until the next start or stop."""
    return root.with_name(f"{root.name}.previous")


def stop_if_empty(session: Any, ours: frozenset[str], force: bool, progress: Progress, root: Path = ROOT) -> bool:
    """Stopped when it holds nothing but `ours` (the bucket of its Terraform state), or anyway with `force`.
    Otherwise it keeps running, whole, and the error says what it holds that the tooling did not put there, and the
    way out."""
    gg, s3, ecr = (client(session, service) for service in ("greengrassv2", "s3", "ecr"))
    left = leftovers(gg, s3, ecr, ours)
    if left and not force:
        held = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in left.items())
        raise LocalCloudError(
            f"the local cloud still holds what this project did not create ({held}). It keeps running with "
            "them. Remove them yourself, or run `make destroy FORCE=1` to stop the local cloud and discard "
            "everything in it, the core device included."
        )
    if left:
        progress(f"local cloud: discarding what it still holds ({', '.join(left)}), as FORCE asks")
    else:
        progress("local cloud: nothing left behind (components, buckets, objects, repositories, images)")
    return stop(progress, root)


def leftovers(gg: Any, s3: Any, ecr: Any, ours: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Whatever the local cloud still holds after a teardown but the buckets the tooling keeps there (`ours`: its
    Terraform state's): it is ours alone, so anything found was left behind."""
    found: dict[str, list[str]] = {}
    with calling("list what the local cloud still holds"):
        components = [c["componentName"] for c in gg.list_components(scope="PRIVATE").get("components", [])]
        buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"] not in ours]
        objects = [
            f"s3://{bucket}/{v['Key']}"
            for bucket in buckets
            for v in s3.list_object_versions(Bucket=bucket).get("Versions", [])
        ]
        repositories = [r["repositoryName"] for r in ecr.describe_repositories().get("repositories", [])]
        images = [
            f"{name}@{i['imageDigest']}"
            for name in repositories
            for i in ecr.list_images(repositoryName=name)["imageIds"]
        ]
    for kind, items in (
        ("component", components),
        ("bucket", buckets),
        ("object", objects),
        ("repository", repositories),
        ("image", images),
    ):
        if items:
            found[kind] = items
    return found
