"""A Docker engine that answers, and the subscriber's base image, on any machine.

Used alike by `.ci/run`, the Makefile and the tests, so that all three see the same engine. Where no engine
answers and we are root, Debian's `docker.io` is installed if needed and `dockerd` started in the background;
elsewhere the error says what to do. The base image is pulled where a registry answers, else built once from
Debian packages (debootstrap + `docker import`) and kept under a fixed tag, so it is built once per machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

Progress = Callable[[str], None]

PUBLIC_BASE_IMAGE = "python:3.11-slim-bookworm"
# Debian bookworm's python3 is 3.11, like the public image, so the same cp311 wheels fit both.
LOCAL_BASE_IMAGE = "edgeml/python-base:3.11-bookworm"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEFAULT_SOCKET = Path("/var/run/docker.sock")


class EngineError(RuntimeError):
    """The engine or the base image cannot be had; the message says why and what to do."""


@dataclass(frozen=True)
class Dockerd:
    """Where a dockerd we start keeps its socket and state.

    `state_dir=None` is the machine's own engine (default paths, default bridge). A `state_dir` gives an extra,
    isolated engine with no bridge and no iptables rules, so it can run beside the machine's one.
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


def connect(url: str | None = None, timeout: float = 10.0) -> docker.DockerClient | None:
    """A client whose engine answers a ping, or None."""
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout) if url else docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, OSError):
        return None
    return client


def _apt_install(*packages: str, progress: Progress) -> None:
    if shutil.which("apt-get") is None:
        raise EngineError(f"{', '.join(packages)} missing and this machine has no apt-get: install them by hand")
    progress(f"installing Debian packages: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EngineError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")


def start_dockerd(spec: Dockerd, timeout: float = 60.0, progress: Progress = _say) -> subprocess.Popen[bytes]:
    """Start dockerd in its own session (it outlives us) and wait until it answers."""
    if shutil.which("dockerd") is None:
        _apt_install("docker.io", progress=progress)
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
    proc.terminate()
    raise EngineError(f"dockerd did not answer within {timeout:.0f}s; see {spec.log_path}:\n{_tail(spec.log_path)}")


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


def build_local_base_image(client: docker.DockerClient, progress: Progress = _say) -> None:
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0:
            raise EngineError(
                "building the base image offline needs debootstrap and root: "
                "`sudo apt-get install debootstrap`, then run again as root"
            )
        _apt_install("debootstrap", progress=progress)
    with tempfile.TemporaryDirectory(prefix="edgeml-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            DEBIAN_MIRROR,
        ]
        progress(f"$ {' '.join(cmd)}")
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
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."], check=True)
        repository, tag = LOCAL_BASE_IMAGE.rsplit(":", 1)
        progress(f"importing {LOCAL_BASE_IMAGE} ({tarball.stat().st_size / 1e6:.0f} MB)")
        client.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=["ENV LANG=C.UTF-8", 'CMD ["python3"]'],
        )
    if not image_exists(client, LOCAL_BASE_IMAGE):
        raise EngineError(f"docker import reported no error but {LOCAL_BASE_IMAGE} is not there")
