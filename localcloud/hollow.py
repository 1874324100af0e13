"""Hollow core devices: many simulated Greengrass cores in one process, as Kubernetes' hollow nodes are kubelets
without containers.

Each one is provisioned as the installer provisions a core (its thing, created through IoT's API, joins the
thing group), and from then on behaves towards the cloud as a nucleus does, without running anything:
- its first fleet status report makes it a core device (HEALTHY, no components);
- told that a job execution waits for it (the jobs service's notify-next), it starts the next pending execution
  (StartNextPendingJobExecution), resolves the deployment's components for its platform
  (ResolveComponentCandidates), "installs" them for a while, then reports the execution SUCCEEDED or FAILED with
  the nucleus's status details and sends a fleet status report listing its components and their states;
- then it takes the next pending execution, if any.
Faults are drawn per device from a seed, so a run can be repeated: `offline` (never takes a job), `slow` (takes
`SLOW_FACTOR` times as long), `failing` (its install fails and it rolls back), `broken` (succeeds, then a
component goes BROKEN and the device UNHEALTHY).

One thread schedules every device's next step on the jobs' clock (`ScaledClock`: an hour of rollout can run in a
minute) and makes its calls on the control plane directly, under its lock, with the parameters a core sends:
the in-process stand-in for MQTT's jobs topics and the fleet status topic, which carry the same requests.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from localcloud.greengrassv2 import ControlPlane
from localcloud.restjson import ServiceError
from recipeformat.platform import RUNTIME

log = logging.getLogger("localcloud.hollow")

INSTALL_SECONDS = 20.0  # a deployment's time on a hollow core, on the jobs' clock
SLOW_FACTOR = 10.0
BROKEN_AFTER = 30.0
NOTIFY_LATENCY = 0.5  # from notify-next to the core's StartNextPendingJobExecution
FAULTS = ("offline", "slow", "failing", "broken")
NUCLEUS_VERSION = "2.14.0"


class FaultSpecError(ValueError):
    """A fault specification that does not parse."""


@dataclass(frozen=True)
class Faults:
    """The share of devices with each fault; a device has at most one."""

    shares: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def parse(cls, spec: str, seed: int = 0) -> Faults:
        """`failing=0.2,offline=0.01`: the share of the fleet with each fault (together at most 1)."""
        shares: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, value = item.partition("=")
            try:
                share = float(value)
            except ValueError:
                share = -1.0
            if name not in FAULTS or not 0 <= share <= 1:
                raise FaultSpecError(f"{item!r}: expected FAULT=SHARE, FAULT one of {', '.join(FAULTS)}, SHARE 0 to 1")
            shares[name] = share
        if sum(shares.values()) > 1:
            raise FaultSpecError(f"the fault shares add up to more than 1: {spec}")
        return cls(shares, seed)

    def of(self, index: int) -> str | None:
        draw = random.Random(f"{self.seed}:{index}").random()
        for name in FAULTS:
            share = self.shares.get(name, 0.0)
            if draw < share:
                return name
            draw -= share
        return None


class DriftSpecError(ValueError):
    """A drift specification that does not parse."""


@dataclass(frozen=True)
class Drift:
    share: float = 0.0
    features: tuple[str, ...] = ()
    shift: float = 0.0  # in training standard deviations
    seed: int = 0

    @classmethod
    def parse(cls, spec: str, seed: int = 0) -> Drift:
        """`share:features:shift`, e.g. `0.1:alcohol,pH:1.0` (empty: no drift)."""
        if not spec.strip():
            return cls(seed=seed)
        parts = spec.split(":")
        try:
            share, names, shift = (
                float(parts[0]),
                tuple(n.strip() for n in parts[1].split(",") if n.strip()),
                float(parts[2]),
            )
        except (IndexError, ValueError):
            share, names, shift = -1.0, (), 0.0
        if len(parts) != 3 or not 0 <= share <= 1 or not names:
            raise DriftSpecError(f"{spec!r}: expected SHARE:FEATURE,...:SHIFT, e.g. 0.1:alcohol,pH:1.0")
        return cls(share, names, shift, seed)

    def drifted(self, index: int) -> bool:
        return random.Random(f"drift:{self.seed}:{index}").random() < self.share


class ScaledClock:
    """Wall-clock time that runs `scale` times faster from the moment it is made."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError(f"a time scale is positive, not {scale}")
        self.scale, self.origin, self.started = scale, time.time(), time.monotonic()

    def __call__(self) -> float:
        return self.origin + (time.monotonic() - self.started) * self.scale

    def real(self, seconds: float) -> float:
        return seconds / self.scale


@dataclass
class _Core:
    thing: str
    fault: str | None
    components: dict[str, str] = field(default_factory=dict)  # name -> version, as installed
    broken: str | None = None
    sequence: int = 0


class HollowFleet:
    def __init__(
        self,
        plane: ControlPlane,
        things: Iterable[str],
        faults: Faults,
        clock: ScaledClock,
        platform: dict[str, str] | None = None,
    ) -> None:
        self.plane, self.faults, self.clock = plane, faults, clock
        self.platform = platform or {"os": "linux", "architecture": "amd64", "runtime": RUNTIME}
        self.cores = {thing: _Core(thing, faults.of(index)) for index, thing in enumerate(things)}
        self.started_executions = 0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="hollow-fleet")
        self._group_arn: str | None = None

    # Provisioning, as the installer does it ---------------------------------------------------------------------

    def provision(self, iot: Any, group: str, workers: int = 8) -> bool:
        """Each thing created and in `group` once the group exists (again after it is recreated); False while it
        does not exist yet. Then each core sends its first fleet status report."""
        try:
            arn = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
        except iot.exceptions.ResourceNotFoundException:
            return False
        if arn == self._group_arn:
            return True

        def join(thing: str) -> None:
            with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
                iot.create_thing(thingName=thing)
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)

        with ThreadPoolExecutor(workers, thread_name_prefix="hollow-provision") as pool:
            list(pool.map(join, self.cores))
        with self.plane.lock:
            for core in self.cores.values():
                self._report(core, "COMPLETE", "CADENCE", list(core.components))
        self._group_arn = arn
        log.info("%d hollow core devices provisioned in %s", len(self.cores), group)
        return True

    # The scheduler ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def notified(self, thing: str) -> None:
        """The jobs service's notify-next for `thing` (called under the control plane's lock)."""
        core = self.cores.get(thing)
        if core is not None and core.fault != "offline":
            self._after(NOTIFY_LATENCY, lambda: self._start(core))

    def _after(self, seconds: float, step: Callable[[], None]) -> None:
        with self._wake:
            self._sequence += 1
            heapq.heappush(self._queue, (self.clock() + seconds, self._sequence, step))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._queue or self._queue[0][0] > self.clock()):
                    wait = self.clock.real(self._queue[0][0] - self.clock()) if self._queue else None
                    self._wake.wait(timeout=wait)
                if self._stopped:
                    return
                _, _, step = heapq.heappop(self._queue)
            try:
                with self.plane.lock:
                    step()
            except Exception:  # one device's bug must not stop the fleet
                log.exception("a hollow core's step failed")

    # What a core does -------------------------------------------------------------------------------------------

    def _start(self, core: _Core) -> None:
        taken = self.plane.jobs.start_next_pending_job_execution({"thingName": core.thing})
        execution = taken.get("execution")
        if not execution:
            return
        if execution["versionNumber"] == 2:  # it went QUEUED -> IN_PROGRESS just now
            self.started_executions += 1
        document = json.loads(execution.get("jobDocument") or "{}")
        wanted = {name: str(spec["version"]) for name, spec in (document.get("components") or {}).items()}
        cause = self._resolve(wanted)
        if cause is None and core.fault == "failing":
            cause = "a component failed to install: hollow core fault injection"
        duration = INSTALL_SECONDS * (SLOW_FACTOR if core.fault == "slow" else 1.0)
        self._after(duration, lambda: self._finish(core, execution["jobId"], wanted, cause))

    def _resolve(self, wanted: dict[str, str]) -> str | None:
        candidates = [
            {"componentName": name, "componentVersion": version, "versionRequirements": {"deployment": f"={version}"}}
            for name, version in wanted.items()
        ]
        if not candidates:
            return None
        try:
            self.plane.resolve_component_candidates(
                {
                    "platform": {"name": self.platform["os"], "attributes": self.platform},
                    "componentCandidates": candidates,
                }
            )
        except ServiceError as exc:
            return f"the components cannot be resolved: {exc}"
        return None

    def _finish(self, core: _Core, job_id: str, wanted: dict[str, str], cause: str | None) -> None:
        if cause is None:
            status, details = "SUCCEEDED", {"detailed-deployment-status": "SUCCESSFUL"}
            core.components = dict(wanted)
        else:
            status = "FAILED"
            details = {
                "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
                "deployment-failure-cause": cause,
                "deployment-error-stack": json.dumps(["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR"]),
                "deployment-error-types": json.dumps(["COMPONENT_ERROR"]),
            }
        try:
            self.plane.jobs.update_job_execution(
                {"jobId": job_id, "thingName": core.thing, "status": status, "statusDetails": details}
            )
        except ServiceError as exc:  # timed out or canceled meanwhile: the service has the last word
            log.debug("hollow core %s: %s", core.thing, exc)
        self._report(core, "COMPLETE", "THING_GROUP_DEPLOYMENT", list(core.components))
        if status == "SUCCEEDED" and core.fault == "broken" and core.components:
            self._after(BROKEN_AFTER, lambda: self._break(core))
        self._after(0.0, lambda: self._start(core))  # the next pending execution, if any

    def _break(self, core: _Core) -> None:
        core.broken = sorted(core.components)[-1]
        self._report(core, "PARTIAL", "BROKEN_COMPONENT", [core.broken])

    def _report(self, core: _Core, kind: str, trigger: str, names: list[str]) -> None:
        core.sequence += 1
        self.plane.fleet_status(
            core.thing,
            {
                "ggcVersion": NUCLEUS_VERSION,
                "platform": self.platform["os"],
                "architecture": self.platform["architecture"],
                "thing": core.thing,
                "overallDeviceStatus": "UNHEALTHY" if core.broken else "HEALTHY",
                "sequenceNumber": core.sequence,
                "timestamp": int(self.clock() * 1000),
                "messageType": kind,
                "trigger": trigger,
                "components": [
                    {
                        "componentName": name,
                        "version": core.components[name],
                        "status": "BROKEN" if name == core.broken else "RUNNING",
                        "isRoot": True,
                    }
                    for name in names
                ],
            },
        )
