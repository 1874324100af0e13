"""What a model check runs is confined as the subscriber's image confines it: the probe below is the module the
attacker controls (libxgboost parsing a hostile model file can do anything the process can), and it reports what it
could reach. Real namespaces and a real unprivileged user; nothing is mocked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.publishing import confined

PROBE = """
import json, os, socket, sys
def tried(act):
    try:
        act()
        return "done"
    except OSError as error:
        return type(error).__name__
port, secret, given = int(sys.argv[1]), sys.argv[2], sys.argv[3]
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "groups": os.getgroups(),
    "effective_caps": int(status["CapEff"], 16), "no_new_privs": status["NoNewPrivs"].strip(),
    "environment": sorted(os.environ),
    "connect": tried(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
    "read_secret": tried(lambda: open(secret).read()),
    "write_repo": tried(lambda: open(os.path.join(os.path.dirname(__file__), "planted"), "w")),
    "input": open(given).read(),
}))
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="confinement is what root's check gets: any other user already runs it unprivileged"
)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port on this host's loopback that accepts connections: the network the command must not have."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def probe(tmp_path: Path, listener: int, environ: dict[str, str]) -> dict[str, object]:
    # Under a folder only root may enter, as a CI clone (mktemp -d) or /root is.
    private = tmp_path / "private"
    (private / "src").mkdir(parents=True)
    private.chmod(0o700)
    (private / "src" / "probe.py").write_text(PROBE)
    secret = private / "credentials"
    secret.write_text("aws_secret_access_key = s3cr3t")
    secret.chmod(0o600)
    given = private / "model.json"
    given.write_text('{"learner": {}}')
    given.chmod(0o600)
    module = confined.Module("probe", private / "src", {"model": given})
    finished = confined.run(
        module, lambda at: [str(listener), str(secret), str(at["model"])], "", 60, {**os.environ, **environ}
    )
    assert finished.process.returncode == 0, finished.process.stderr
    report: dict[str, object] = json.loads(finished.process.stdout)
    return report


def test_the_command_runs_unprivileged_offline_without_credentials(tmp_path: Path, listener: int) -> None:
    keys = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "HOME": "/root"}
    seen = probe(tmp_path, listener, keys)
    assert (seen["uid"], seen["euid"], seen["groups"]) == (confined.UNPRIVILEGED, confined.UNPRIVILEGED, [])
    assert seen["effective_caps"] == 0 and seen["no_new_privs"] == "1"
    environment = seen["environment"]
    assert isinstance(environment, list) and not set(keys) & set(environment)
    assert seen["connect"] != "done"  # a namespace of its own: nothing listens there, the loopback is down
    assert seen["read_secret"] == "PermissionError"
    assert seen["write_repo"] != "done"
    assert seen["input"] == '{"learner": {}}'  # its own input, and only that, it may read
    assert not (tmp_path / "private" / "src" / "planted").exists()


def test_nothing_outlives_the_command(tmp_path: Path, listener: int) -> None:
    """The stage and its copies of the inputs are gone, and its mounts never were on the host."""
    before = set(confined.STAGE_PARENT.glob("edgeml-confined-*"))
    probe(tmp_path, listener, {})
    assert set(confined.STAGE_PARENT.glob("edgeml-confined-*")) == before
    mounts = subprocess.run(["cat", "/proc/self/mounts"], capture_output=True, text=True, check=True).stdout
    assert "edgeml-confined-" not in mounts
