"""Images for another CPU architecture than this machine's, built offline.

Docker here is Debian's 20.10, without buildx. buildah (Debian's package, from the containers project) builds the
same Dockerfile for a given `--platform`, stores images with their architecture set (a `docker import` cannot),
writes them into the Docker engine (`docker-daemon:` transport) and pushes multi-platform indexes. The foreign
CPU's binaries run through qemu-user-static, registered with the kernel's binfmt_misc.

The base image comes from Debian packages (debootstrap --arch), as the host's does (engine.py). Its storage is the
`vfs` driver: slower than overlay, but it works wherever buildah runs, inside a container or on overlayfs too.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from scripts.building import machine
from scripts.building.engine import BASE_IMAGE_CONFIG, EngineError, debian_rootfs
from scripts.errors import ToolError
from scripts.platforms import Platform
from scripts.progress import Progress, step

BINFMT = Path("/proc/sys/fs/binfmt_misc")
BASE_IMAGE = "localhost/edgeml/python-base:3.11-bookworm-{debian}"
# Where Debian (here and in the images) keeps the CA bundle that apt and Python trust.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class CrossBuildError(ToolError):
    """The foreign-architecture build could not run; the message carries the tool's own words."""


@contextlib.contextmanager
def _one_build_at_a_time(progress: Progress) -> Iterator[None]:
    """Builds of this user wait for each other: buildah's layer cache is shared, so the second build of the same
    inputs takes seconds once the first is done, where two at once would both run every step under emulation (and
    both make the base image)."""
    lock = Path.home() / ".cache" / "edgeml" / "buildah.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for another image build of this machine to finish (its layers are reused)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run_buildah(*args: str, progress: Progress) -> subprocess.CompletedProcess[str]:
    command = [machine.command("buildah", progress), "--storage-driver", "vfs", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _buildah(*args: str, progress: Progress, quiet: bool = False) -> str:
    if not quiet:
        progress(f"$ buildah {' '.join(args)}")
    done = _run_buildah(*args, progress=progress)
    if done.returncode != 0:
        raise CrossBuildError(f"buildah {args[0]} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2500:]}")
    return done.stdout.strip()


def emulation_ready(platform: Platform) -> bool:
    entry = BINFMT / f"qemu-{platform.qemu}"
    return entry.is_file() and entry.read_text().startswith("enabled")


def ensure_emulation(platform: Platform, progress: Progress) -> None:
    """qemu-user-static registered for `platform`'s binaries (with the F flag, so containers can use it)."""
    if emulation_ready(platform):
        return
    try:
        machine.ensure(["qemu-user-static", "binfmt-support"], progress)
    except machine.MissingPackage as exc:
        raise EngineError(str(exc)) from None
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, check=False)
    subprocess.run(
        [machine.command("binfmt-support", progress), "--enable", f"qemu-{platform.qemu}"],
        capture_output=True,
        check=False,
    )
    if not emulation_ready(platform):
        raise EngineError(
            f"{platform.docker} binaries cannot run here: no enabled binfmt_misc entry qemu-{platform.qemu} "
            f"(needs root: `apt-get install qemu-user-static binfmt-support`, then "
            f"`update-binfmts --enable qemu-{platform.qemu}`)"
        )


def ensure_base_image(platform: Platform, progress: Progress) -> str:
    """buildah's name of a Python 3.11 base image for `platform`, built from Debian packages once per machine."""
    name = BASE_IMAGE.format(debian=platform.debian)
    with _one_build_at_a_time(progress):
        if _run_buildah("inspect", "--type", "image", name, progress=progress).returncode != 0:
            _make_base_image(platform, name, progress)
    return name


def _make_base_image(platform: Platform, name: str, progress: Progress) -> None:
    ensure_emulation(platform, progress)
    with (
        step(progress, f"building {name} from Debian packages (once per machine, minutes under emulation)"),
        tempfile.TemporaryDirectory(prefix="edgeml-rootfs-") as tmp,
    ):
        tarball = debian_rootfs(Path(tmp), platform.debian, progress)
        os_name, architecture = platform.docker.split("/")
        container = _buildah("from", "--arch", architecture, "scratch", progress=progress, quiet=True)
        try:
            _buildah("add", container, str(tarball), "/", progress=progress, quiet=True)
            changes = [option for change in BASE_IMAGE_CONFIG for option in _config_options(change)]
            _buildah(
                "config", "--os", os_name, "--arch", architecture, *changes, container, progress=progress, quiet=True
            )
            _buildah("commit", "--quiet", container, name, progress=progress, quiet=True)
        finally:
            _buildah("rm", container, progress=progress, quiet=True)


def _config_options(change: str) -> list[str]:
    """A Dockerfile-style change (`ENV K=V`, `CMD [...]`) as `buildah config` options."""
    instruction, _, value = change.partition(" ")
    return [f"--{instruction.lower()}", value]


def build(
    context: Path,
    platform: Platform,
    buildargs: dict[str, str],
    tag: str,
    progress: Progress,
    network: str | None = None,
) -> None:
    """The Dockerfile in `context` built for `platform`, then written into the Docker engine as `tag`. `network`:
    the RUN steps' (`host` for one that fetches Debian packages; none is needed otherwise). Steps that fetch trust
    what this machine trusts: its CA bundle is mounted over theirs while they run (a TLS-inspecting proxy's CA
    included), and is not in the image."""
    ensure_emulation(platform, progress)
    local = f"localhost/{tag}"
    arguments = [option for key, value in buildargs.items() for option in ("--build-arg", f"{key}={value}")]
    if network:
        arguments += ["--network", network]
        if CA_BUNDLE.is_file():
            arguments += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    with (
        _one_build_at_a_time(progress),
        step(progress, f"building {tag} for {platform.docker} under emulation (buildah)"),
    ):
        _buildah(
            "build",
            "--platform",
            platform.docker,
            "--layers",
            *arguments,
            "-t",
            local,
            str(context),
            progress=progress,
            quiet=True,
        )
        _buildah("push", "--quiet", local, f"docker-daemon:{tag}", progress=progress, quiet=True)


def push_index(
    sources: list[str], destination: str, credentials: tuple[str, str], tls_verify: bool, progress: Progress
) -> str:
    """`sources` (image references with their transport, one per platform) pushed as one multi-platform index
    to `destination` (`registry/repository:tag`), in Docker's manifest list format, which every Docker engine
    and ECR read; returns the index's digest."""
    index = f"localhost/edgeml/index-{uuid.uuid4().hex[:12]}"
    _buildah("manifest", "create", index, progress=progress, quiet=True)
    try:
        for source in sources:
            _buildah("manifest", "add", index, source, progress=progress, quiet=True)
        with tempfile.TemporaryDirectory(prefix="edgeml-index-") as tmp:
            digest_file = Path(tmp) / "digest"
            auths = auth_file(Path(tmp), destination.split("/", 1)[0], credentials)
            _buildah(
                "manifest",
                "push",
                "--all",
                "--format",
                "v2s2",
                f"--tls-verify={'true' if tls_verify else 'false'}",
                "--authfile",
                str(auths),
                "--digestfile",
                str(digest_file),
                index,
                f"docker://{destination}",
                progress=progress,
                quiet=True,
            )
            return digest_file.read_text().strip()
    finally:
        _buildah("manifest", "rm", index, progress=progress, quiet=True)


def auth_file(folder: Path, registry: str, credentials: tuple[str, str]) -> Path:
    """The registry's credentials in a containers-auth.json only this user can read: on a command line (`--creds`)
    every user of the machine could read them in the process list."""
    path = folder / "auth.json"
    token = base64.b64encode(":".join(credentials).encode()).decode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"auths": {registry: {"auth": token}}}, out)
    return path
