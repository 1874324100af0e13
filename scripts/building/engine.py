"""A Docker engine that answers, and the subscriber's base image, on any machine.

Used alike by `.ci/run`, the Makefile and the tests, so that all three see the same engine. Where no engine
answers and we are root, Debian's `docker.io` is installed if needed (scripts/building/machine.py) and `dockerd`
started in the background; elsewhere the error says what to do. The base image is pulled where a registry answers,
else built once from Debian packages (debootstrap + `docker import`) and kept under a fixed tag, so it is built once
per machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from scripts.building import machine
from scripts.errors import ToolError
from scripts.platforms import this_machine
from scripts.progress import Progress, step

PUBLIC_BASE_IMAGE = "python:3.11-slim-bookworm"
# Debian bookworm's python3 is 3.11, like the public image, so the same cp311 wheels fit both.
LOCAL_BASE_IMAGE = "edgeml/python-base:3.11-bookworm"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "https://deb.debian.org/debian")
# Every package debootstrap takes is checked against Debian's archive key (Release signed, then each hash).
DEBIAN_KEYRING = machine.PACKAGES["debian-archive-keyring"].command
DEFAULT_SOCKET = Path("/var/run/docker.sock")
BASE_IMAGE_CONFIG = ["ENV LANG=C.UTF-8", 'CMD ["python3"]']
# Every image the project builds carries it (components/subscriber/Dockerfile); the base image does not.
BUILT_LABEL = "com.edgeml.built-by=edgeml"


class EngineError(ToolError):
    """The engine or the base image cannot be had; the message says why and what to do."""


@dataclass(frozen=True)
class Dockerd:
    """Where a dockerd we start keeps its socket and state.

    `state_dir=None` is the machine's own engine (default paths, default bridge). A `state_dir` gives an extra,
    isolated engine beside the machine's one: a network namespace of its own (`unshare --net`, which leaves the
    mounts alone, unlike `ip netns exec`, whose fresh /sys hides the cgroups from dockerd), no bridge, no iptables
    rules. The namespace matters: dockerd started with `--bridge none` deletes `docker0` from the namespace it runs
    in, which in the machine's namespace breaks every container of the machine's engine.
    """

    socket: Path = DEFAULT_SOCKET
    state_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return (self.state_dir or Path("/var/log")) / "edgeml-dockerd.log"

    def command(self) -> list[str]:
        cmd = ["dockerd", "--host", self.url]
        if self.state_dir is not None:
            cmd = ["unshare", "--net", *cmd]
            cmd += [
                "--data-root",
                str(self.state_dir / "data"),
                "--exec-root",
                str(self.state_dir / "exec"),
                "--pidfile",
                str(self.state_dir / "dockerd.pid"),
                "--bridge",
                "none",
                "--iptables=false",
            ]
        return cmd


def _say(message: str) -> None:
    print(message, flush=True)


# How long one engine call may take once the engine answers: removing a large image or committing a layer on a
# loaded machine takes well over the ping's few seconds.
OPERATION_TIMEOUT = 600


def connect(url: str | None = None, timeout: float = 10.0) -> docker.DockerClient | None:
    """A client whose engine answered a ping within `timeout`, or None."""

    def client(seconds: float) -> docker.DockerClient:
        return docker.DockerClient(base_url=url, timeout=seconds) if url else docker.from_env(timeout=seconds)

    try:
        probe = client(timeout)
        try:
            probe.ping()
        finally:
            probe.close()
        return client(OPERATION_TIMEOUT)
    except (docker.errors.DockerException, OSError):
        return None


def _ensure_packages(*names: str, progress: Progress) -> None:
    try:
        machine.ensure(names, progress)
    except machine.MissingPackage as exc:
        raise EngineError(str(exc)) from None


def start_dockerd(spec: Dockerd, timeout: float = 60.0, progress: Progress = _say) -> subprocess.Popen[bytes]:
    """Start dockerd in its own session (it outlives us) and wait until it answers."""
    _ensure_packages("docker.io", progress=progress)
    if spec.state_dir is not None:
        spec.state_dir.mkdir(parents=True, exist_ok=True)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    progress(f"starting dockerd at {spec.url} (log: {spec.log_path})")
    with spec.log_path.open("ab") as log:
        proc = subprocess.Popen(spec.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(
                f"dockerd exited with {proc.returncode}; last lines of {spec.log_path}:\n" + _tail(spec.log_path)
            )
        if spec.socket.exists() and connect(spec.url, timeout=2) is not None:
            return proc
        time.sleep(0.25)
    stop_dockerd(proc)
    raise EngineError(f"dockerd did not answer within {timeout:.0f}s; see {spec.log_path}:\n{_tail(spec.log_path)}")


def stop_dockerd(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a dockerd that `start_dockerd` started (an isolated one's network namespace goes with it)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_engine(progress: Progress = _say) -> docker.DockerClient:
    """The machine's engine, started if it is not running and we may start it."""
    client = connect()
    if client is not None:
        return client
    host = os.environ.get("DOCKER_HOST")
    if host and host != Dockerd().url:
        raise EngineError(f"no Docker engine answers at DOCKER_HOST={host}: start it, or unset DOCKER_HOST")
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers at /var/run/docker.sock. Start it (`sudo systemctl start docker`), "
            "or add yourself to the `docker` group, or run this as root to have it started for you."
        )
    start_dockerd(Dockerd(), progress=progress)
    client = connect()
    if client is None:
        raise EngineError("dockerd started but the client cannot reach it")
    return client


def image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_base_image(client: docker.DockerClient, progress: Progress = _say) -> str:
    """The name of a usable Python 3.11 base image: present, pulled, or built locally once."""
    for name in (PUBLIC_BASE_IMAGE, LOCAL_BASE_IMAGE):
        if image_exists(client, name):
            return name
    progress(f"pulling {PUBLIC_BASE_IMAGE}")
    try:
        client.images.pull(PUBLIC_BASE_IMAGE)
        return PUBLIC_BASE_IMAGE
    except docker.errors.APIError as exc:
        progress(
            f"cannot pull {PUBLIC_BASE_IMAGE} ({exc.explanation or exc}); building {LOCAL_BASE_IMAGE} "
            "from Debian packages instead (once per machine, about a minute)"
        )
    build_local_base_image(client, progress)
    return LOCAL_BASE_IMAGE


def remove_built_images(client: docker.DockerClient) -> int:
    """Remove every image and build layer the project built (every tag, registry names included), leaving the
    base image: the next build then starts cold, as on a new machine. Returns how many images went."""
    built = client.images.list(filters={"label": BUILT_LABEL})
    for image in built:
        with contextlib.suppress(docker.errors.ImageNotFound):  # a parent goes with its child
            client.images.remove(image.id, force=True)
    client.images.prune(filters={"label": BUILT_LABEL, "dangling": False})
    return len(built)


def debian_rootfs(
    folder: Path, debian_architecture: str, progress: Progress = _say, mirror: str = DEBIAN_MIRROR
) -> Path:
    """A tarball of a minimal Debian bookworm with Python 3.11, for `debian_architecture` (a foreign one runs its
    package scripts under qemu-user-static: see crossbuild.ensure_emulation). Only from a mirror whose Release is
    signed by Debian's archive key: whoever serves it, every package is then checked against that Release."""
    _ensure_packages("debootstrap", "debian-archive-keyring", progress=progress)
    if os.geteuid() != 0:
        raise EngineError("building the base image offline needs root (debootstrap): run this again as root")
    rootfs = folder / "rootfs"
    cmd = [
        str(machine.where("debootstrap")),  # present: ensured above
        f"--arch={debian_architecture}",
        f"--keyring={DEBIAN_KEYRING}",
        "--force-check-gpg",
        "--variant=minbase",
        "--include=python3,python3-venv,ca-certificates",
        "bookworm",
        str(rootfs),
        mirror,
    ]
    with step(progress, f"debootstrap of Debian bookworm for {debian_architecture}"):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineError(f"debootstrap failed ({done.returncode}):\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    # Package caches and docs are dead weight in an image.
    for junk in (
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
    ):
        shutil.rmtree(rootfs / junk, ignore_errors=True)
    tarball = folder / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."], check=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def build_local_base_image(client: docker.DockerClient, progress: Progress = _say) -> None:
    with tempfile.TemporaryDirectory(prefix="edgeml-rootfs-") as tmp:
        tarball = debian_rootfs(Path(tmp), this_machine().debian, progress)
        repository, tag = LOCAL_BASE_IMAGE.rsplit(":", 1)
        progress(f"importing {LOCAL_BASE_IMAGE} ({tarball.stat().st_size / 1e6:.0f} MB)")
        client.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=BASE_IMAGE_CONFIG,
        )
    if not image_exists(client, LOCAL_BASE_IMAGE):
        raise EngineError(f"docker import reported no error but {LOCAL_BASE_IMAGE} is not there")
