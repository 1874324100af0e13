"""A rollout to a fleet of hollow core devices, followed by the pipeline's own follower, all in this process.

`python -m benchmarks.fleet --devices N [--fail-fraction F] [--rollout PRESET]`: the local cloud's services (moto
with IAM enforced, the Greengrass endpoint, throttling at `--throttle`), N hollow core devices provisioned through
IoT's API into a thing group, a component version and a deployment with the preset's rollout, abort and timeout
configuration, followed by scripts.fleet.rollout at `--request-rate` requests a second. The jobs' clock runs
`--time-scale` times faster (an hour of rollout in a minute at 60). Prints the figures and writes
build/benchmarks/fleet.json (or `--out`).

Figures: devices, succeeded, failed, aborted, executions_started, executions_reached (notified: reached by the
rollout before the job stopped), max_api_calls_per_poll (the follower's calls in its busiest poll), polls,
setup_api_calls (before the first poll: the deployment's job and the group's things, counted once), throttled,
provision_s, wall_s (deployment created to rollout followed to its end), simulated_minutes, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from localcloud.cloud import running
from localcloud.hollow import Faults, HollowFleet, ScaledClock
from localcloud.throttle import Throttle, ThrottleSpecError
from scripts.fleet import deployments, pacing, presets, rollout
from scripts.fleet.pacing import Pacer
from scripts.product import REPO

OUT = REPO / "build" / "benchmarks" / "fleet.json"
REGION = "eu-west-1"
GROUP = "fleet-benchmark"
APP = "com.example.FleetBenchmark"
# IoT's documented default rates for the two job reads the follower makes (requests a second), and a conservative
# one for greengrassv2: the local cloud answers faster calls with ThrottlingException.
THROTTLE = "DescribeJob=10,ListJobExecutionsForJob=10,greengrassv2=20"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--fail-fraction", type=float, default=0.0, help="share of devices whose install fails")
    parser.add_argument("--rollout", choices=sorted(presets.PRESETS), default=presets.DEFAULT)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--request-rate", type=float, default=5.0, help="the follower's requests a second")
    parser.add_argument("--interval", type=float, default=1.0, help="real seconds between two polls")
    parser.add_argument("--throttle", default=THROTTLE)
    parser.add_argument("--timeout", type=float, default=1800.0, help="real seconds to follow, at most")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.devices < 1 or not 0 <= args.fail_fraction <= 1 or args.time_scale <= 0 or args.request_rate <= 0:
        parser.error("--devices is at least 1, --fail-fraction 0 to 1, --time-scale and --request-rate positive")
    try:
        Throttle.parse(args.throttle)
    except ThrottleSpecError as exc:
        parser.error(str(exc))
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    clock = ScaledClock(args.time_scale)
    throttle = Throttle.parse(args.throttle) if args.throttle else None
    with running(REGION, {}, throttle=throttle, clock=clock) as cloud:
        iot, gg = cloud.client("iot"), cloud.client("greengrassv2")
        group_arn = iot.create_thing_group(thingGroupName=GROUP)["thingGroupArn"]
        names = [f"hollow-{index:05d}" for index in range(args.devices)]
        fleet = HollowFleet(cloud.plane, names, Faults.parse(f"failing={args.fail_fraction}"), clock)
        cloud.plane.jobs.notify = fleet.notified
        fleet.start()
        print(f"provisioning {args.devices} hollow core devices through IoT's API ...", file=sys.stderr)
        started = time.perf_counter()
        fleet.provision(iot, GROUP)
        provision_s = time.perf_counter() - started
        recipe = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": APP,
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "app"}}],
        }
        gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
        time.sleep(0.3)  # DEPLOYABLE
        session = boto3.Session(
            region_name=REGION, aws_access_key_id=cloud.owner[0], aws_secret_access_key=cloud.owner[1]
        )
        pacer = Pacer(args.request_rate)
        watch = pacing.Watch(
            pacer.client(session, "iot", cloud.aws),
            pacer.client(session, "greengrassv2", cloud.greengrass),
            pacer.client(session, "ecr", cloud.aws),
            pacer,
        )
        policies = deployments.Policies(rollout=args.rollout)
        sim_started = clock()
        started = time.perf_counter()
        deployment = deployments.create(gg, group_arn, "fleet", {APP: {"componentVersion": "1.0.0"}}, policies, None)
        views: list[rollout.FleetView] = []

        def seen(view: rollout.FleetView) -> None:
            views.append(view)
            print(f"  {time.perf_counter() - started:6.1f}s  {view.summary()}  ({view.calls} calls)", file=sys.stderr)

        try:
            last = rollout.follow(watch, group_arn, deployment, {APP}, args.timeout, seen, args.interval)
        except rollout.RolloutError as exc:
            if exc.view is None:
                raise
            last = exc.view
        wall_s = time.perf_counter() - started
        setup_calls = pacer.calls - sum(v.calls for v in views)
        fleet.stop()
        with cloud.plane.lock:
            job = cloud.plane.jobs.jobs[deployment]
            reached = len(job.executions)
    return {
        "devices": args.devices,
        "fail_fraction": args.fail_fraction,
        "rollout": args.rollout,
        "succeeded": last.counts["SUCCEEDED"],
        "failed": last.failed,
        "aborted": last.stopped,
        "abort_reason": last.comment,
        "executions_started": fleet.started_executions,
        "executions_reached": reached,
        "max_api_calls_per_poll": max(v.calls for v in views),
        "polls": len(views),
        "setup_api_calls": setup_calls,
        "throttled": pacer.throttled,
        "request_rate": args.request_rate,
        "throttle": args.throttle,
        "provision_s": round(provision_s, 1),
        "wall_s": round(wall_s, 1),
        "time_scale": args.time_scale,
        "simulated_minutes": round((clock() - sim_started) / 60, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    figures = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:24} {value}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
