"""A core device of another CPU than this machine's (an arm64 board beside an amd64 one), emulated.

A real device has its own CPU, userland and Docker engine. Here each of the three is stood in for:
- the userland: a container of that CPU's image (Python, the Docker CLI; built by the tooling, scripts.devices)
  running `python -m localcloud device` with this checkout mounted read-only, its binaries run by qemu-user-static
  through binfmt_misc; its core's components run in it too;
- the engine: a dockerd of its own, on the host network (the registry is on loopback) with a bridge of its own,
  since `--bridge none` would delete the machine's docker0. Its own engine matters: an engine keeps one image per
  reference, so cores of two CPUs sharing one would run each other's variant of a multi-platform image. The core
  pulls its CPU's variant (localgg.core.check_docker_image) and the Docker CLI defaults to it
  (DOCKER_DEFAULT_PLATFORM), as on the board itself;
- the network: the host's, as the device reaches the cloud's endpoints on loopback.

Paths are the same inside and out (the device's folder is mounted at its own path), because the device's engine
resolves the bind mounts its components ask for (the IPC socket) on this machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from localcloud.coredevice import DeviceSpec

log = logging.getLogger("localcloud.emulated")
CHECKOUT = Path(__file__).resolve().parent.parent  # localcloud, localgg and recipeformat, as the device runs them
ENGINE_TIMEOUT = 60.0
DEVICE_TIMEOUT = 180.0  # Python under emulation starts slowly, on a loaded machine very slowly


class EmulationUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Emulated:
    """A core device of another CPU: its OCI platform (linux/arm64) and the image of its userland."""

    platform: str
    image: str

    @property
    def architecture(self) -> str:
        return self.platform.rsplit("/", 1)[-1]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if binary is None:
        raise EmulationUnavailable("an emulated device needs a bridge, and `ip` is missing (apt-get install iproute2)")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def _bridge(name: str, address: str) -> Iterator[None]:
    _ip("link", "delete", name)  # left by a run that was killed: ours by its name
    steps: list[tuple[str, ...]] = [("link", "add", name, "type", "bridge"), ("addr", "add", address, "dev", name)]
    steps.append(("link", "set", name, "up"))
    for step in steps:
        done = _ip(*step)
        if done.returncode != 0:
            _ip("link", "delete", name)
            raise EmulationUnavailable(f"ip {' '.join(step)} failed: {done.stderr.strip()} (it needs root)")
    try:
        yield
    finally:
        _ip("link", "delete", name)


@contextlib.contextmanager
def _engine(folder: Path, bridge: str) -> Iterator[Path]:
    """A dockerd of the device's own, its images under `folder`; yields its socket. The socket and the runtime state
    (containerd's sockets among it) live in a short folder of their own: a Unix socket's path holds 107 bytes."""
    binary = shutil.which("dockerd", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if binary is None:
        raise EmulationUnavailable("dockerd is not installed (apt-get install docker.io)")
    folder.mkdir(parents=True, exist_ok=True)
    runtime = Path(tempfile.mkdtemp(prefix="edgeml-engine-"))
    socket = runtime / "docker.sock"
    command = [
        binary,
        "--host",
        f"unix://{socket}",
        "--data-root",
        str(folder / "data"),
        "--exec-root",
        str(runtime / "exec"),
        "--pidfile",
        str(runtime / "dockerd.pid"),
        "--bridge",
        bridge,
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
    ]
    log_file = folder / "dockerd.log"
    with log_file.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_for_engine(process, socket, log_file)
        yield socket
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        # dockerd mounts its data root on itself and leaves the mount when it dies early: without this, the folder
        # could not be deleted.
        for place in (folder / "data", runtime):
            _unmount_under(place)
        shutil.rmtree(runtime, ignore_errors=True)


def _unmount_under(place: Path) -> None:
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m == str(place) or m.startswith(f"{place}/")), reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True, check=False)


def _wait_for_engine(process: subprocess.Popen[bytes], socket: Path, log_file: Path) -> None:
    deadline = time.monotonic() + ENGINE_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulationUnavailable(
                f"the device's dockerd exited with {process.returncode}; the end of {log_file}:\n{_tail(log_file)}"
            )
        if socket.exists():
            with contextlib.suppress(docker.errors.DockerException, OSError):
                docker.DockerClient(base_url=f"unix://{socket}", timeout=2).ping()
                return
        time.sleep(0.25)
    process.kill()
    raise EmulationUnavailable(f"the device's dockerd did not answer within {ENGINE_TIMEOUT:.0f}s; see {log_file}")


def _tail(path: Path, lines: int = 8) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def names(spec: DeviceSpec) -> tuple[str, str]:
    """The device's bridge and container on this machine, named after its folder: two stacks, each with an emulated
    device of the same thing name, never take each other's (a bridge name holds 15 bytes)."""
    tag = hashlib.sha256(str(spec.root.resolve()).encode()).hexdigest()[:8]
    return f"egdev{tag}", f"localcloud-{tag}-{spec.thing}"


def _free_subnet() -> str:
    """The first 10.213.N.1/24 that no interface of this machine is on (another stack's device bridge, say)."""
    taken = _ip("-4", "-o", "addr", "show").stdout
    for third in range(256):
        if f" 10.213.{third}." not in taken:
            return f"10.213.{third}.1/24"
    raise EmulationUnavailable("no free 10.213.N.0/24 subnet is left for an emulated device's bridge")


@contextlib.contextmanager
def emulated_device(
    machine_engine: docker.DockerClient, spec: DeviceSpec, device: Emulated, poll_interval: float
) -> Iterator[str]:
    """The device running in its image, until the block ends; yields its engine's URL. Then its components stop,
    and its container, engine and bridge go."""
    platform = device.platform
    # The device's ggc_user must walk into its folder, as the nucleus makes its root 0755
    # (Permissions.setRootPermission); the stack keeps it beside its own device (stack.native_home), not in its
    # 0700 folder.
    spec.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    spec.root.chmod(0o755)
    bridge, name = names(spec)
    with _bridge(bridge, _free_subnet()), _engine(spec.root / "engine", bridge) as socket:
        with contextlib.suppress(docker.errors.NotFound):
            machine_engine.containers.get(name).remove(force=True)  # left by a run that was killed
        command = [  # the image's entrypoint is the device runtime: `python -m localcloud device`
            "--root", str(spec.root),
            "--thing-name", spec.thing,
            "--greengrass", spec.greengrass,
            "--credentials", spec.credentials,
            "--aws", spec.aws,
            "--mqtt", f"{spec.mqtt[0]}:{spec.mqtt[1]}",
            "--poll-interval", str(poll_interval),
        ]  # fmt: skip
        try:
            container = machine_engine.containers.run(
                device.image,
                command,
                name=name,
                platform=platform,
                detach=True,
                network_mode="host",
                volumes={
                    str(CHECKOUT): {"bind": str(CHECKOUT), "mode": "ro"},
                    str(spec.root): {"bind": str(spec.root), "mode": "rw"},
                    str(socket): {"bind": str(socket), "mode": "rw"},
                },
                environment={
                    "PYTHONPATH": str(CHECKOUT),
                    "PYTHONUNBUFFERED": "1",
                    "PYTHONDONTWRITEBYTECODE": "1",  # the checkout is read-only
                    "DOCKER_HOST": f"unix://{socket}",
                    "DOCKER_DEFAULT_PLATFORM": platform,
                },
                labels={"com.edgeml.localcloud-device": spec.thing},
            )
        except docker.errors.DockerException as exc:
            raise EmulationUnavailable(f"the emulated device {spec.thing} ({platform}) cannot start: {exc}") from None
        try:
            _wait_until_up(container, spec.root / "started")
            log.info("emulated device %s (%s) runs in container %s", spec.thing, platform, container.short_id)
            yield f"unix://{socket}"
        finally:
            _stop(container)


def _wait_until_up(container: docker.models.containers.Container, started: Path) -> None:
    """Up once the device runtime runs (it joins when the installer has written its identity); an exit is an
    error, with its words."""
    deadline = time.monotonic() + DEVICE_TIMEOUT
    while not started.exists():
        container.reload()
        if container.status not in ("created", "running"):
            tail = container.logs(tail=15).decode(errors="replace")
            raise EmulationUnavailable(f"the emulated device {container.name} exited:\n{tail}")
        if time.monotonic() > deadline:
            raise EmulationUnavailable(f"the emulated device {container.name} did not start in {DEVICE_TIMEOUT:.0f}s")
        time.sleep(0.5)


def _stop(container: docker.models.containers.Container) -> None:
    """SIGTERM first: the device stops its components (their containers on its engine) before it exits."""
    try:
        container.stop(timeout=60)
        container.remove(force=True)
    except docker.errors.DockerException as exc:
        log.warning("the emulated device's container %s did not stop cleanly: %s", container.name, exc)
