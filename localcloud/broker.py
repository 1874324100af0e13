"""Debian's mosquitto on a loopback port, standing in for AWS IoT Core's MQTT broker: the core's connection to
IoT Core (PublishToIoTCore, SubscribeToIoTCore) and its fleet status reports go through it.

As IoT Core, it answers only clients it knows: each has a password (mosquitto's PBKDF2-SHA512 `$7$` hashes, in a
file only the stack reads) and may use only the topics its ACL lists (localcloud.mqttauth derives them from the
IoT policies of a device's certificate). The accounts change as devices join: `Broker.accounts` rewrites both files
and has mosquitto read them again (SIGHUP). Without accounts (a test's own broker) it takes anonymous clients.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localcloud.net import dies_with_parent, free_port, wait_until_listening

ITERATIONS = 101  # mosquitto_passwd's own
SALT_BYTES = 12


class BrokerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Account:
    """A client the broker knows: its username, password, and what it may do with which topic filters
    (mosquitto's ACL: `read` to subscribe and receive, `write` to publish, `readwrite` both)."""

    username: str
    password: str
    topics: tuple[tuple[str, str], ...]  # (access, topic filter)


def password_hash(password: str, salt: bytes | None = None) -> str:
    """The `$7$` line mosquitto_passwd writes for `password`."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _private(path: Path, text: str) -> None:
    staged = path.with_suffix(".tmp")
    staged.unlink(missing_ok=True)
    with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    staged.replace(path)


class Broker:
    def __init__(
        self, process: subprocess.Popen[bytes], address: tuple[str, int], folder: Path, accounts: Sequence[Account]
    ) -> None:
        self.process, self.address, self.folder = process, address, folder
        self._accounts = _sorted(accounts)

    def accounts(self, accounts: Sequence[Account]) -> None:
        """The clients the broker knows from now on (those it knew and no longer does are cut off as they next
        ask for something: mosquitto checks its ACL on every publish and subscribe)."""
        wanted = _sorted(accounts)
        if wanted == self._accounts:
            return
        _write_accounts(self.folder, wanted)
        self.process.send_signal(signal.SIGHUP)
        self._accounts = wanted

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _sorted(accounts: Sequence[Account]) -> tuple[Account, ...]:
    return tuple(sorted(accounts, key=lambda a: a.username))


def _write_accounts(folder: Path, accounts: Sequence[Account]) -> None:
    _private(folder / "passwords", "".join(f"{a.username}:{password_hash(a.password)}\n" for a in accounts))
    _private(
        folder / "acl",
        "".join(
            f"user {a.username}\n" + "".join(f"topic {access} {topic}\n" for access, topic in a.topics) + "\n"
            for a in accounts
        ),
    )


def start(folder: Path, port: int | None = None, accounts: Sequence[Account] | None = None) -> Broker:
    """A broker configured under `folder` (made 0700), knowing `accounts` (None: anyone, anonymously)."""
    binary = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")  # Debian installs it there
    if binary is None:
        raise BrokerUnavailable("mosquitto is not installed (apt-get install mosquitto)")
    port = port or free_port()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # As root, mosquitto would become the `mosquitto` user, who cannot read the stack's 0700 folder.
    lines = [f"listener {port} 127.0.0.1", "persistence false", f"user {pwd.getpwuid(os.geteuid()).pw_name}"]
    if accounts is None:
        lines.append("allow_anonymous true")
    else:
        _write_accounts(folder, accounts)
        lines += ["allow_anonymous false", f"password_file {folder / 'passwords'}", f"acl_file {folder / 'acl'}"]
    _private(folder / "mosquitto.conf", "\n".join(lines) + "\n")
    process = subprocess.Popen(
        [binary, "-c", str(folder / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=dies_with_parent,  # from the stack's main thread
    )
    if not wait_until_listening(port, 10, lambda: process.poll() is None):
        process.kill()
        raise BrokerUnavailable(f"mosquitto did not start on port {port}")
    return Broker(process, ("127.0.0.1", port), folder, accounts or ())
