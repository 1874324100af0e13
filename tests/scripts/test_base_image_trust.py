"""The offline base image is built only from packages Debian signed, whoever serves them.

A mirror on this host's loopback plays the attacker on the path (a proxy, a poisoned DNS answer, a wrong
DEBIAN_MIRROR): it serves a bookworm Release that lists its own packages. debootstrap, given Debian's archive keyring
and --force-check-gpg (debootstrap(8)), refuses it before it fetches any package. Real debootstrap and gpg; only the
mirror is ours.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.building import engine

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap runs as root (the base image build asks for it)"),
    pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is needed to sign the attacker's Release"),
]

RELEASE = """Origin: Debian
Label: Debian
Suite: stable
Codename: bookworm
Architectures: amd64 arm64
Components: main
Description: Debian 12 (not really)
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages
"""


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Path]:
    """The folder a loopback HTTP server serves as a Debian mirror; yields it, the URL is its `url` file."""
    root = tmp_path / "mirror"
    (root / "dists" / "bookworm" / "main" / "binary-amd64").mkdir(parents=True)
    (root / "dists" / "bookworm" / "Release").write_text(RELEASE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        (tmp_path / "url").write_text(f"http://127.0.0.1:{server.server_address[1]}/")
        yield root
        server.shutdown()


def refused(folder: Path, url: str) -> str:
    with pytest.raises(engine.EngineError) as error:
        engine.debian_rootfs(folder, "amd64", progress=lambda message: None, mirror=url)
    assert not (folder / "rootfs.tar").exists()
    assert not (folder / "rootfs" / "usr").exists(), "packages were unpacked"
    return str(error.value)


def test_a_release_signed_by_another_key_is_refused(mirror: Path, tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Not Debian <mirror@example.com>", "ed25519", "sign", "never"], check=True)
    release = mirror / "dists" / "bookworm" / "Release"
    subprocess.run([*gpg, "--clearsign", "-o", str(release.with_name("InRelease")), str(release)], check=True)
    subprocess.run([*gpg, "--armor", "--detach-sign", "-o", f"{release}.gpg", str(release)], check=True)
    said = refused(tmp_path / "build", (tmp_path / "url").read_text())
    assert "signed by unknown key" in said, said


def test_an_unsigned_release_is_refused(mirror: Path, tmp_path: Path) -> None:
    said = refused(tmp_path / "build", (tmp_path / "url").read_text())
    assert "Failed getting release signature file" in said, said  # without the check it goes on to Packages
