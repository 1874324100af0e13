"""Follow a deployment per device: the deployment's own status stays ACTIVE while devices fail.

For each core device in the thing group: its execution of our deployment (from its effective deployments) and
the lifecycle state of our components on it. Done when every device has finished; a failure names the device,
the component and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.aws import calling
from scripts.errors import ToolError

SUCCEEDED = frozenset({"SUCCEEDED", "COMPLETED"})
FAILED = frozenset({"FAILED", "TIMED_OUT", "CANCELED", "REJECTED"})
BAD_STATES = frozenset({"ERRORED", "BROKEN"})


class RolloutError(ToolError):
    """At least one device failed, or the rollout did not finish in time; the message says where and why."""


@dataclass(frozen=True)
class InstalledState:
    version: str
    state: str
    details: str = ""


@dataclass(frozen=True)
class Device:
    thing: str
    health: str
    execution: str | None  # None: the device has not picked the deployment up yet
    reason: str = ""
    components: dict[str, InstalledState] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.execution in SUCCEEDED or self.execution in FAILED

    def failure(self) -> str | None:
        if self.execution not in FAILED:
            return None
        broken = [
            f"{name} {c.version} is {c.state}" + (f" ({c.details})" if c.details else "")
            for name, c in sorted(self.components.items())
            if c.state in BAD_STATES
        ]
        # After a rollback the components are healthy again: the reason alone then says what failed.
        causes = [self.reason, *broken] if self.reason or broken else ["no reason given"]
        return f"{self.thing}: deployment {self.execution}: " + "; ".join(filter(None, causes))


def _pages(gg: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in gg.get_paginator(operation).paginate(**params):
        items += page.get(key, [])
    return items


def snapshot(gg: Any, group_arn: str, deployment_id: str | None, watched: set[str]) -> list[Device]:
    with calling(f"list the core devices of {group_arn}"):
        cores = _pages(gg, "list_core_devices", "coreDevices", thingGroupArn=group_arn)
    devices = []
    for core in sorted(cores, key=lambda c: c["coreDeviceThingName"]):
        thing = core["coreDeviceThingName"]
        with calling(f"read the deployments and components of {thing}"):
            effective = _pages(gg, "list_effective_deployments", "effectiveDeployments", coreDeviceThingName=thing)
            installed = _pages(gg, "list_installed_components", "installedComponents", coreDeviceThingName=thing)
        ours = next((e for e in effective if e.get("deploymentId") == deployment_id), None)
        components = {
            c["componentName"]: InstalledState(
                c.get("componentVersion", "?"), c.get("lifecycleState", "?"), c.get("lifecycleStateDetails", "")
            )
            for c in installed
            if c.get("componentName") in watched
        }
        devices.append(
            Device(
                thing,
                core.get("status", "?"),
                ours.get("coreDeviceExecutionStatus") if ours else None,
                ours.get("reason", "") if ours else "",
                components,
            )
        )
    return devices


EMPTY_GROUP_GRACE = 10.0


def follow(
    gg: Any,
    group_arn: str,
    deployment_id: str,
    watched: set[str],
    timeout: float,
    on_update: Callable[[list[Device]], None],
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Device]:
    started = clock()
    deadline = started + timeout
    while True:
        devices = snapshot(gg, group_arn, deployment_id, watched)
        on_update(devices)
        if not devices:
            # A core device exists for the service once its first fleet status report has arrived, which may
            # be a moment after it took the deployment: an empty group is final only after a grace period.
            if clock() < min(deadline, started + EMPTY_GROUP_GRACE):
                sleep(interval)
                continue
            raise RolloutError(f"no core devices in {group_arn}: nothing received deployment {deployment_id}")
        if all(d.finished for d in devices):
            failures = [f for d in devices if (f := d.failure())]
            if failures:
                raise RolloutError("\n".join(failures))
            return devices
        if clock() >= deadline:
            waiting = ", ".join(f"{d.thing} ({d.execution or 'not started'})" for d in devices if not d.finished)
            raise RolloutError(f"deployment {deployment_id} did not finish within {timeout:.0f}s; waiting on {waiting}")
        sleep(interval)
