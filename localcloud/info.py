"""How the tooling finds a running local cloud: the contract between the stack and the tools that use it.

Standard library only, on purpose: `scripts` imports this module and nothing else of `localcloud`, so the
tooling never loads moto, the control plane or the device (a real account's deploy included).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "stack.json"
IDENTITY = "identity"  # beside a device's core: what the installer wrote for it (localcloud.installer)
# The one command line that starts a stack; `find` recognises a running one by it.
COMMAND = ("-m", "localcloud", "stack")
DEVICE_HOMES = Path("/var/lib/edgeml-localcloud")


def device_home(root: Path) -> Path:
    """Where the stack under `root` keeps its own core device. Its components run as ggc_user (when the stack is
    root), who must reach the core's folder as on a device, whose /greengrass/v2 the nucleus makes 0755
    (Permissions.setRootPermission); the stack's own folder is 0700 (it holds the owner's keys) and may sit in a
    home or a temporary folder nobody else can enter. So a root stack keeps its device where a device keeps its
    core, outside the checkout, in a folder named after the stack's; any other stack keeps it in its own folder."""
    if os.geteuid() != 0:
        return root
    return DEVICE_HOMES / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Device:
    core: str  # its core's folder (component logs under logs/)
    platform: str  # OCI, e.g. linux/arm64
    engine: str  # its Docker engine's URL, where its components' containers run
    container: str = ""  # an emulated device's container on the machine's engine (its userland); "" for the stack's own


@dataclass(frozen=True)
class StackInfo:
    """Where each part of a running stack is: the contract between the stack and the tools that use it."""

    pid: int
    aws: str
    greengrassv2: str
    registry: str
    region: str
    account: str
    thing: str  # the stack's own core device
    thing_group: str
    devices: dict[str, Device]  # every core device by thing name, the stack's own first
    mqtt: str  # host:port of the broker standing in for IoT Core
    # The owner's keys: every request to the stack must be signed with them (moto enforces IAM, the Greengrass
    # endpoint checks SigV4), so only who can read this file (mode 0600) can drive the stack.
    access_key_id: str
    secret_access_key: str
    hollow: int = 0  # hollow core devices in the group besides `devices` (localcloud.hollow)

    def environment(self) -> dict[str, str]:
        """The variables that point boto3, the AWS CLI and Terraform at this stack, and nowhere else."""
        return {
            "AWS_ENDPOINT_URL": self.aws,
            "AWS_ENDPOINT_URL_GREENGRASSV2": self.greengrassv2,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def save(self, root: Path) -> None:
        partial = root / (STATE_FILE + ".tmp")
        partial.unlink(missing_ok=True)
        # Created 0600, never widened: it holds the owner's secret key.
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(json.dumps(asdict(self), indent=2))
        partial.replace(root / STATE_FILE)

    @classmethod
    def load(cls, root: Path) -> StackInfo | None:
        try:
            saved = json.loads((root / STATE_FILE).read_text())
            return cls(**{**saved, "devices": {thing: Device(**d) for thing, d in saved["devices"].items()}})
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    def component_log(self, component: str, thing: str | None = None) -> Path:
        """A component's log on one device (the stack's own by default)."""
        return Path(self.devices[thing or self.thing].core) / "logs" / f"{component}.log"

    def identity(self, thing: str) -> Path:
        """Where the installer writes a device's identity; the device joins once `identity.json` is there."""
        return Path(self.devices[thing].core).parent / IDENTITY

    def component_logs(self, component: str) -> dict[str, Path]:
        return {thing: self.component_log(component, thing) for thing in self.devices}


def exited(pid: int) -> bool:
    """Gone, or a zombie that nobody reaped (PID 1 may not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _is_stack(pid: int) -> bool:
    """A running stack, not some other process that reuses a stale PID."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return not exited(pid) and "\0".join(COMMAND).encode() in cmdline


def find(root: Path) -> StackInfo | None:
    """The stack whose state is under `root`, if it is running."""
    info = StackInfo.load(root)
    return info if info is not None and _is_stack(info.pid) else None
