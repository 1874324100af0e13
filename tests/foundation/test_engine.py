"""The engine helper, the base image cache and the socket-mount path the subscriber container relies on."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import docker
import pytest

from scripts.building import engine

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="starting dockerd needs root")


def _has_docker0() -> bool:
    return Path("/sys/class/net/docker0").exists()


@needs_root
@pytest.mark.docker
@pytest.mark.slow
def test_helper_brings_up_an_isolated_engine_and_leaves_the_machines_alone(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    """A second dockerd on its own socket, state and network namespace. dockerd started with `--bridge none`
    deletes docker0 from the namespace it runs in (the offline-toolchain notes measured it): in the machine's
    namespace that broke every later build with a RUN step. Afterwards the machine's engine still has its
    bridge, and a container on the default bridge still starts."""
    assert _has_docker0(), "the machine's engine should have its docker0 bridge before the test"
    short = Path(f"/tmp/edgeml-engine-{os.getpid()}")
    spec = engine.Dockerd(socket=short / "docker.sock", state_dir=short)
    assert engine.connect(spec.url, timeout=2) is None
    messages: list[str] = []
    proc = engine.start_dockerd(spec, timeout=90, progress=messages.append)
    try:
        client = engine.connect(spec.url)
        assert client is not None
        assert client.version()["ApiVersion"]
        assert any("starting dockerd" in message for message in messages)
    finally:
        engine.stop_dockerd(proc)
        subprocess.run(["rm", "-rf", str(short)], check=False)
    assert _has_docker0(), "the isolated engine removed the machine's docker0 bridge"
    out = docker_client.containers.run(
        base_image, ["python3", "-c", "print('bridged')"], network_mode="bridge", remove=True
    )
    assert out.decode().strip() == "bridged"


def test_an_isolated_engine_runs_in_a_network_namespace_of_its_own() -> None:
    command = engine.Dockerd(socket=Path("/tmp/x.sock"), state_dir=Path("/tmp/x")).command()
    assert command[:3] == ["unshare", "--net", "dockerd"] and "--bridge" in command
    assert engine.Dockerd().command()[0] == "dockerd"  # the machine's own engine: its own namespace, its bridge


def test_no_engine_and_no_right_to_start_one_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(engine.EngineError, match="no Docker engine answers at DOCKER_HOST=unix:///nonexistent"):
        engine.ensure_engine(progress=lambda message: None)


@pytest.mark.docker
def test_base_image_is_reused_not_rebuilt(docker_client: docker.DockerClient, base_image: str) -> None:
    before = docker_client.images.get(base_image).id
    messages: list[str] = []
    assert engine.ensure_base_image(docker_client, progress=messages.append) == base_image
    assert messages == [], "an existing base image must be neither pulled nor built again"
    assert docker_client.images.get(base_image).id == before


@pytest.mark.docker
def test_non_root_container_talks_over_a_bind_mounted_unix_socket(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    folder = Path(f"/tmp/edgeml-sock-{os.getpid()}")
    folder.mkdir(exist_ok=True)
    path = folder / "ipc.socket"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    path.chmod(0o666)  # as the nucleus does, so a non-root container user can connect
    server.listen(1)
    received: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(100))
            conn.sendall(b"pong")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    client_code = (
        "import os, socket; s = socket.socket(socket.AF_UNIX); s.connect(os.environ['SOCK']); "
        "s.sendall(b'ping'); print(s.recv(100).decode())"
    )
    try:
        out = docker_client.containers.run(
            base_image,
            ["python3", "-c", client_code],
            user="10001",
            network_mode="none",
            remove=True,
            environment={"SOCK": str(path)},
            volumes={str(path): {"bind": str(path), "mode": "rw"}},
        )
    finally:
        server.close()
        path.unlink()
        folder.rmdir()
    thread.join(timeout=5)
    assert received == [b"ping"]
    assert out.decode().strip() == "pong"
