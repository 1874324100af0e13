"""Debian's mosquitto on a loopback port, standing in for AWS IoT Core's MQTT broker: the core's connection to
IoT Core (PublishToIoTCore, SubscribeToIoTCore) and its fleet status reports go through it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from localcloud.net import free_port, wait_until_listening


class BrokerUnavailable(RuntimeError):
    pass


def start(folder: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], tuple[str, int]]:
    """A broker configured under `folder`; returns the process and its (host, port)."""
    binary = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")  # Debian installs it there
    if binary is None:
        raise BrokerUnavailable("mosquitto is not installed (apt-get install mosquitto)")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_until_listening(port, 10, lambda: broker.poll() is None):
        broker.kill()
        raise BrokerUnavailable(f"mosquitto did not start on port {port}")
    return broker, ("127.0.0.1", port)
