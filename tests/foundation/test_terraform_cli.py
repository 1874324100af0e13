"""Terraform onto a machine that lacks it (scripts/building/terraform_cli.py, run by .ci/run): from a release server
standing in for HashiCorp's, on a loopback port of the test's own. The genuine archive cannot be fetched here, so the
acceptance of a good archive is shown with the declared checksum set to the served archive's (said where done)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.building import terraform_cli

REPO = Path(__file__).resolve().parents[2]
STAND_IN = b"#!/bin/sh\necho 'Terraform v1.11.4'\n"


def release(folder: Path, binary: bytes) -> bytes:
    """A release folder as HashiCorp lays it out, holding a zip with `binary` as its terraform."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("terraform", binary)
    name = terraform_cli.platform_name()
    place = folder / terraform_cli.VERSION / f"terraform_{terraform_cli.VERSION}_{name}.zip"
    place.parent.mkdir(parents=True)
    place.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_archive_whose_checksum_is_not_the_declared_one_is_refused_and_nothing_installed(tmp_path: Path) -> None:
    release(tmp_path / "releases", b"#!/bin/sh\necho pwned\n")
    bin_dir = tmp_path / "bin"
    with served(tmp_path / "releases") as url, pytest.raises(terraform_cli.TerraformMissing, match="refused"):
        terraform_cli.install(bin_dir, url, progress=lambda message: None)
    assert not bin_dir.exists() or list(bin_dir.iterdir()) == []


def test_an_archive_with_the_declared_checksum_is_unpacked_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = hashlib.sha256(release(tmp_path / "releases", STAND_IN)).hexdigest()
    # The declared checksum is HashiCorp's; the served archive is ours, so its digest is declared in its place.
    monkeypatch.setitem(terraform_cli.SHA256, terraform_cli.platform_name(), digest)
    with served(tmp_path / "releases") as url:
        installed = terraform_cli.install(tmp_path / "bin", url, progress=lambda message: None)
    assert installed == tmp_path / "bin" / "terraform" and os.access(installed, os.X_OK)
    assert subprocess.run([installed], capture_output=True, text=True, check=True).stdout == "Terraform v1.11.4\n"
    assert [p.name for p in (tmp_path / "bin").iterdir()] == ["terraform"]


def test_a_machine_without_terraform_and_without_the_release_fails_at_once_naming_it(tmp_path: Path) -> None:
    """.ci/run's first Terraform step on a machine that has none and cannot reach the releases: exit 1 at once,
    naming Terraform, never a run that goes on with the Terraform suites skipped."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {"PATH": os.path.dirname(sys.executable), "TERRAFORM_RELEASES_URL": f"http://127.0.0.1:{port}"}
    done = subprocess.run(
        [sys.executable, "-m", "scripts.building.terraform_cli", "ensure", "--into", str(tmp_path / "bin")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "error: terraform is not on the PATH" in done.stderr and "could not be fetched" in done.stderr
    assert not (tmp_path / "bin" / "terraform").exists()


def test_ci_installs_terraform_before_anything_uses_it() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert script.index("scripts.building.terraform_cli ensure") < script.index("terraform version")
    assert "will be SKIPPED" not in script
