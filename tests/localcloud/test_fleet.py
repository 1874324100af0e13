"""A fleet of hollow core devices in the local cloud, deployed to with the pipeline's rollout presets and followed
by its fleet follower: real HTTP endpoints (moto for IoT with IAM enforced, the Greengrass endpoint), the real
jobs service of the local cloud, and hollow devices that take their job executions as a core does. Time runs 60
times faster on the jobs' clock (an hour in a minute), so a few hundred devices roll out in seconds.

What the service does comes from the IoT developer guide ("Job rollout, scheduling, and abort configurations";
"Job execution timeout and retry configurations") and the API reference (DescribeJob, ListJobExecutionsForJob,
CancelJob; greengrassv2 CreateDeployment's iotJobConfiguration, ThrottlingException with retryAfterSeconds)."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud.cloud import Cloud, running
from localcloud.hollow import Faults, HollowFleet, ScaledClock
from localcloud.rollout import MINUTE
from localcloud.throttle import Throttle
from scripts.fleet import deployments, pacing, releases, rollout
from scripts.fleet.pacing import Pacer
from scripts.publishing.components import Registered
from tests.support.outputs import stack_outputs
from tests.support.watch import watch

pytestmark = pytest.mark.slow  # hundreds of hollow devices through the real endpoints

REGION = "eu-west-1"
APP = "com.example.FleetApp"
SCALE = 60.0


@dataclass
class Fleet:
    cloud: Cloud
    hollow: HollowFleet
    group: str  # its ARN
    gg: Any
    iot: Any
    session: boto3.Session
    clock: ScaledClock  # the jobs' clock

    def watch(self, rate: float = 200.0) -> pacing.Watch:
        return watch(self.session, self.cloud.aws, self.cloud.greengrass, rate)

    def deploy(self, version: str, preset: str, replaces: str | None = None, timeout_minutes: int = 30) -> str:
        policies = deployments.Policies(job_timeout_minutes=timeout_minutes, rollout=preset)
        return deployments.create(
            self.gg, self.group, "fleet", {APP: {"componentVersion": version}}, policies, replaces
        )

    def follow(self, deployment: str, seen: list[rollout.FleetView], timeout: float = 120.0) -> rollout.FleetView:
        return rollout.follow(self.watch(), self.group, deployment, {APP}, timeout, seen.append, interval=0.2)


@contextlib.contextmanager
def fleet(size: int, faults: str = "", throttle: Throttle | None = None) -> Iterator[Fleet]:
    clock = ScaledClock(SCALE)
    with running(REGION, {}, throttle=throttle, clock=clock) as cloud:
        iot, gg = cloud.client("iot"), cloud.client("greengrassv2")
        group = f"fleet-{uuid.uuid4().hex[:8]}"
        arn = iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
        hollow = HollowFleet(cloud.plane, [f"{group}-{i:04d}" for i in range(size)], Faults.parse(faults), clock)
        cloud.plane.jobs.notify = hollow.notified
        hollow.start()
        try:
            assert hollow.provision(iot, group)
            for version, os_name in (("1.0.0", "linux"), ("2.0.0", "linux"), ("3.0.0", "windows")):
                recipe = {
                    "RecipeFormatVersion": "2020-01-25",
                    "ComponentName": APP,
                    "ComponentVersion": version,
                    "Manifests": [{"Platform": {"os": os_name}, "Lifecycle": {"run": "app"}}],
                }
                gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
            session = boto3.Session(
                region_name=REGION, aws_access_key_id=cloud.owner[0], aws_secret_access_key=cloud.owner[1]
            )
            yield Fleet(cloud, hollow, arn, gg, iot, session, clock)
        finally:
            hollow.stop()


def queued_per_minute(iot: Any, job_id: str) -> list[int]:
    created = iot.describe_job(jobId=job_id)["job"]["createdAt"].timestamp()
    pages = iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
    queued = [e["jobExecutionSummary"]["queuedAt"].timestamp() for p in pages for e in p["executionSummaries"]]
    minutes = [int((at - created) // MINUTE) for at in queued]
    return [minutes.count(m) for m in range(max(minutes) + 1)]


def test_hollow_devices_register_like_real_cores() -> None:
    """Provisioned as the installer does (thing created, added to the group), each one is a HEALTHY core device
    from its first fleet status report, with the platform it reports."""
    with fleet(40) as f:
        things = f.iot.list_things_in_thing_group(thingGroupName=f.group.rsplit("/", 1)[-1])["things"]
        assert len(things) == 40
        cores = [
            c for p in f.gg.get_paginator("list_core_devices").paginate(thingGroupArn=f.group) for c in p["coreDevices"]
        ]
        assert len(cores) == 40 and {c["status"] for c in cores} == {"HEALTHY"}
        assert f.gg.get_core_device(coreDeviceThingName=things[0])["architecture"] == "amd64"


def test_a_canary_reaches_the_group_at_its_rate_and_succeeds_in_flat_calls() -> None:
    """The canary preset notifies 5 devices in the first minute and doubles after every 10 successes; every
    device then takes its execution and succeeds. A large group is followed in at most 5 calls a poll."""
    with fleet(200) as f:
        deployment = f.deploy("1.0.0", "canary")
        seen: list[rollout.FleetView] = []
        view = f.follow(deployment, seen)
        assert view.counts["SUCCEEDED"] == 200 and view.failed == 0 and not view.stopped
        per_minute = queued_per_minute(f.iot, f.gg.get_deployment(deploymentId=deployment)["iotJobId"])
        assert per_minute[0] == 5, per_minute
        assert max(per_minute) <= 500 and sum(per_minute) == 200
        assert max(v.calls for v in seen) <= 5
        assert len({v.notified for v in seen}) > 3  # followed while it rolled out, not only at the end
        installed = f.gg.list_installed_components(coreDeviceThingName=f"{f.group.rsplit('/', 1)[-1]}-0007")
        assert [(c["componentVersion"], c["lifecycleState"]) for c in installed["installedComponents"]] == [
            ("1.0.0", "RUNNING")
        ]


def test_too_many_failures_abort_the_job_and_no_device_starts_after() -> None:
    """With a fifth of the devices failing and the canary's 10% threshold after 10 executed, the job is canceled:
    its queued executions are canceled, no device starts one afterwards, and the deployment is CANCELED. The
    follower says so, names the first failing devices with their reasons, and points at a rollback."""
    with fleet(300, faults="failing=0.2") as f:
        deployment = f.deploy("1.0.0", "canary")
        seen: list[rollout.FleetView] = []
        with pytest.raises(rollout.RolloutError) as stopped:
            f.follow(deployment, seen)
        view = stopped.value.view
        assert view is not None and view.job_status == "CANCELED" and "aborted" in view.comment
        message = str(stopped.value)
        assert "stopped (CANCELED: aborted:" in message
        assert "deployment FAILED: FAILED_ROLLBACK_COMPLETE: a component failed to install" in message
        job_id = f.gg.get_deployment(deploymentId=deployment)["iotJobId"]
        reached = sum(queued_per_minute(f.iot, job_id))
        assert f.hollow.started_executions <= reached < 300
        canceled_at = f.iot.describe_job(jobId=job_id)["job"]["lastUpdatedAt"].timestamp()
        # Two minutes on the jobs' clock at once, then the jobs service brought up to it: what a rollout still
        # running would reach by then, it reaches now. No device may start an execution after the cancel.
        f.clock.origin += 120
        f.cloud.plane.jobs.advance(force=True)
        assert sum(queued_per_minute(f.iot, job_id)) == reached
        pages = f.iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
        executions = [e["jobExecutionSummary"] for p in pages for e in p["executionSummaries"]]
        assert "QUEUED" not in {e["status"] for e in executions}
        assert [e for e in executions if "startedAt" in e and e["startedAt"].timestamp() > canceled_at] == []
        assert f.gg.get_deployment(deploymentId=deployment)["deploymentStatus"] == "CANCELED"


@pytest.mark.parametrize("size", [8, 60], ids=["small group", "large group"])
def test_things_that_never_joined_are_named_and_not_waited_for(size: int) -> None:
    """Things in the group that never ran the installer (Terraform's `core_devices` made them; no core device bears
    their name) get job executions that stay QUEUED for as long as the deployment lives (an IoT job reaches every
    thing of its target). The follow ends once every device that joined has finished, exits without error when
    they all succeeded, and names the others with what they need. A device that joined later is waited for."""
    with fleet(size) as f:
        group = f.group.rsplit("/", 1)[-1]
        never = [f"{group}-not-yet-{i}" for i in range(3)]
        for thing in never:
            f.iot.create_thing(thingName=thing)
            f.iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        deployment = f.deploy("1.0.0", "all")
        seen: list[rollout.FleetView] = []
        view = f.follow(deployment, seen, timeout=60)
        assert view.counts["SUCCEEDED"] == size and view.counts["QUEUED"] == len(never)
        assert view.unjoined == tuple(sorted(never)) and view.unjoined_queued == len(never)
        assert "3 of the group's things never joined" in view.summary() and "make device THING=" in view.summary()
        assert view.record()["not_joined"] == sorted(never)
        assert f.gg.get_deployment(deploymentId=deployment)["deploymentStatus"] == "ACTIVE"  # kept open for them


def test_a_group_none_of_whose_things_joined_is_an_error_naming_them() -> None:
    with fleet(0) as f:
        group = f.group.rsplit("/", 1)[-1]
        f.iot.create_thing(thingName=f"{group}-alone")
        f.iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{group}-alone")
        with pytest.raises(rollout.RolloutError, match=r"reached no device: 1 of the group's things never joined"):
            f.follow(f.deploy("1.0.0", "all"), [], timeout=60)


def test_calls_per_poll_do_not_grow_with_the_group() -> None:
    """All at once, no abort, a fifth failing: a group of 30 and one of 300 are followed in the same few calls a
    poll (failures listed, and read in detail a device at a time)."""
    most = {}
    for size in (30, 300):
        with fleet(size, faults="failing=0.2") as f:
            seen: list[rollout.FleetView] = []
            with pytest.raises(rollout.RolloutError, match=r"devices failed"):
                f.follow(f.deploy("1.0.0", "all"), seen)
            assert seen[-1].notified == size and seen[-1].active == 0
            assert 0 < seen[-1].failed < size
            most[size] = max(v.calls for v in seen)
    assert most[300] <= 5 and most[30] <= 5, most


def test_rollback_deploys_the_previous_desired_state_and_follows_it() -> None:
    """A version with no manifest for the devices' platform fails everywhere and is aborted; `rollback` deploys the
    group's last good state (the newest earlier deployment whose job every device succeeded in and whose health
    window passed) as a new deployment, which every device takes, and says which it went back to."""
    with fleet(60) as f:
        first = f.deploy("1.0.0", "all")
        f.follow(first, [])
        deployments.mark(f.gg, REGION, "123456789012", first, deployments.HEALTHY)  # as its health window ends
        bad = f.deploy("3.0.0", "canary", replaces=first)
        with pytest.raises(rollout.RolloutError, match="cannot be resolved"):
            f.follow(bad, [])
        outputs = stack_outputs(REGION, "123456789012", "r/x", "bucket", f.group)
        messages: list[str] = []
        options = releases.Rollout(
            timeout=120, poll_interval=0.2, policies=deployments.Policies(rollout="fast"), health_window=0
        )
        result = releases.rollback(outputs, f.gg, f.watch(), options, messages.append, lambda view: None).record()
        assert result["changes"] == [f"~ {APP} 3.0.0 -> 1.0.0"]
        assert result["deployment"] not in (first, bad)
        assert (result["rollback"]["from"], result["rollback"]["to"]) == (bad, first)
        assert result["fleet"]["executions"]["succeeded"] == 60
        assert deployments.current(f.gg, f.group) == (result["deployment"], {APP: {"componentVersion": "1.0.0"}})
        with pytest.raises(deployments.NothingToRollBack):
            deployments.last_good(
                f.gg, f.watch().iot.describe_job, f"arn:aws:iot:{REGION}:123456789012:thinggroup/none"
            )


def test_a_release_whose_health_window_was_interrupted_is_never_rolled_back_to() -> None:
    """A is deployed and its health window passes; B's window is cut by Ctrl-C (KeyboardInterrupt as the window
    begins); C fails. `rollback` passes over C and over B, which was never proven healthy, says why, and lands on
    A; B carries no health verdict, A carries HEALTHY."""
    with fleet(10) as f:
        outputs = stack_outputs(REGION, "123456789012", "r/x", "bucket", f.group)
        options = releases.Rollout(
            timeout=120, poll_interval=0.2, policies=deployments.Policies(rollout="all"), health_window=1
        )

        def release(version: str, progress: Callable[[str], None] = lambda message: None) -> releases.Release:
            registered = [Registered(APP, version, f"arn:aws:greengrass:{REGION}:123456789012:x", False)]
            return releases.roll_out(outputs, f.gg, f.watch(), registered, options, progress, lambda view: None)

        def interrupted(message: str) -> None:
            if message.startswith("health window:"):
                raise KeyboardInterrupt

        a = release("1.0.0").deployment
        with pytest.raises(KeyboardInterrupt):
            release("2.0.0", interrupted)
        b, _ = deployments.current(f.gg, f.group)
        with pytest.raises(rollout.RolloutError):
            release("3.0.0")  # no manifest for the devices' platform: every device fails
        c, _ = deployments.current(f.gg, f.group)
        assert len({a, b, c}) == 3
        said: list[str] = []
        back = releases.rollback(outputs, f.gg, f.watch(), options, said.append, lambda view: None).record()
        assert (back["rollback"]["from"], back["rollback"]["to"]) == (c, a)
        assert f"passed over {b} (unproven: its health window never finished)" in back["rollback"]["reason"]
        assert deployments.current(f.gg, f.group)[1] == {APP: {"componentVersion": "1.0.0"}}
        assert "edgeml:health" not in (f.gg.get_deployment(deploymentId=b).get("tags") or {})
        assert f.gg.get_deployment(deploymentId=a)["tags"] == {"edgeml:health": "HEALTHY"}


def test_offline_slow_and_broken_devices_are_told_apart() -> None:
    """Offline devices never take their execution (it stays QUEUED and the follower's deadline names them); a slow
    one outlives the job's in-progress timeout and is TIMED_OUT; a broken one succeeds, then reports a BROKEN
    component and is UNHEALTHY."""
    with fleet(30, faults="offline=0.2,slow=0.2,broken=0.2") as f:
        deployment = f.deploy("1.0.0", "all", timeout_minutes=1)
        with pytest.raises(rollout.RolloutError) as late:
            f.follow(deployment, [], timeout=8)
        view = late.value.view
        assert view is not None
        offline = sum(1 for c in f.hollow.cores.values() if c.fault == "offline")
        slow = sum(1 for c in f.hollow.cores.values() if c.fault == "slow")
        assert offline and slow
        assert (view.counts["QUEUED"], view.counts["TIMED_OUT"]) == (offline, slow)
        assert f"{offline} queued (offline devices stay queued)" in str(late.value)
        broken = next(c.thing for c in f.hollow.cores.values() if c.fault == "broken")
        device = f.gg.get_core_device(coreDeviceThingName=broken)
        installed = f.gg.list_installed_components(coreDeviceThingName=broken)["installedComponents"]
        assert device["status"] == "UNHEALTHY" and installed[0]["lifecycleState"] == "BROKEN"


def test_cancel_job_through_iot_stops_queued_executions() -> None:
    """CancelJob (API reference): without force, queued executions are canceled and the job is CANCELED."""
    with fleet(50, faults="offline=1") as f:
        deployment = f.deploy("1.0.0", "all")
        job_id = f.gg.get_deployment(deploymentId=deployment)["iotJobId"]
        f.iot.cancel_job(jobId=job_id, comment="stop")
        job = f.iot.describe_job(jobId=job_id)["job"]
        assert (job["status"], job["jobProcessDetails"]["numberOfCanceledThings"]) == ("CANCELED", 50)
        with pytest.raises(f.iot.exceptions.InvalidRequestException):
            f.iot.cancel_job(jobId=job_id)


class FollowersTime:
    """Time that moves only when the follower waits (each wait also taken for real, so the jobs' clock runs): the
    service's throttle and the follower's pacer read it, so what is throttled is decided by the requests' count
    and spacing, never by how fast this machine sends them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # the follower's own wait, taken for real so the jobs' clock moves: no barrier to give
        self.now += seconds


def test_throttling_is_answered_as_the_service_does_and_waited_out() -> None:
    """Over its rate an operation answers ThrottlingException (greengrassv2 with retryAfterSeconds in Retry-After):
    a burst of six sent at one instant against a 1/s bucket is one answer and five throttles. The follower waits as
    told, every request it sends passes its pacer, and no two are closer than its rate allows."""
    clock = FollowersTime()
    with fleet(30, throttle=Throttle.parse("DescribeJob=1,ListCoreDevices=1", clock)) as f:
        once = f.cloud.client("greengrassv2", config=Config(retries={"mode": "standard", "max_attempts": 1}))

        def listed() -> Any:
            try:
                once.list_core_devices(thingGroupArn=f.group)
            except once.exceptions.ThrottlingException as exc:
                return exc
            return None

        answers = [listed() for _ in range(6)]
        throttled = [exc for exc in answers if exc is not None]
        assert answers[0] is None and len(throttled) == 5
        assert all(exc.response["retryAfterSeconds"] == 1 for exc in throttled)
        deployment = f.deploy("1.0.0", "canary")  # a few seconds of rollout, polled faster than DescribeJob's rate
        rate = 8.0
        following = watch(f.session, f.cloud.aws, f.cloud.greengrass, pacer=Pacer(rate, clock.sleep, clock))
        sent: list[float] = []
        for client in (following.iot, following.gg):
            client.meta.events.register("before-send", lambda **kwargs: sent.append(clock()))
        view = rollout.follow(
            following, f.group, deployment, {APP}, 120, lambda v: None, interval=0.05, sleep=clock.sleep, clock=clock
        )
        assert view.counts["SUCCEEDED"] == 30
        assert following.pacer.throttled > 0
        assert len(sent) == following.pacer.calls
        gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
        assert min(gaps) >= 1 / rate - 1e-9, min(gaps)


def test_iot_reads_a_deployments_job_as_the_aws_cli_does() -> None:
    """A deployment's job as IoT's API shows it (ListJobs, DescribeJobExecution with the status details the core
    reported, ListJobExecutionsForThing); a job made with IoT's own CreateJob is still IoT's (moto's) to describe."""
    with fleet(5) as f:
        deployment = f.deploy("1.0.0", "all")
        f.follow(deployment, [])
        job_id = f.gg.get_deployment(deploymentId=deployment)["iotJobId"]
        group = f.group.rsplit("/", 1)[-1]
        (listed,) = f.iot.list_jobs(thingGroupName=group)["jobs"]
        assert (listed["jobId"], listed["targetSelection"], listed["status"]) == (job_id, "CONTINUOUS", "IN_PROGRESS")
        thing = f"{group}-0003"
        execution = f.iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
        assert execution["status"] == "SUCCEEDED" and execution["thingArn"].endswith(f":thing/{thing}")
        assert execution["statusDetails"]["detailsMap"] == {"detailed-deployment-status": "SUCCESSFUL"}
        (mine,) = f.iot.list_job_executions_for_thing(thingName=thing)["executionSummaries"]
        assert (mine["jobId"], mine["jobExecutionSummary"]["status"]) == (job_id, "SUCCEEDED")
        arn = f.iot.describe_thing(thingName=thing)["thingArn"]
        own = f"own-{uuid.uuid4().hex[:8]}"
        f.iot.create_job(jobId=own, targets=[arn], document="{}")
        assert f.iot.describe_job(jobId=own)["job"]["jobId"] == own
