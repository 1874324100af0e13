"""A fleet's telemetry for a simulated time, through the account side the local cloud runs, all in this process.

`python -m benchmarks.telemetry --devices N [--hours H] [--drift SPEC] [--profile build/model/profile.json]`: moto,
with the telemetry module's resources made through its API as Terraform makes them (the bucket, the two roles and
their policies, the Firehose stream with its buffering hints, the IoT rule with its SQL), N hollow devices sending a
window every `--window` seconds (localcloud.hollow_telemetry), the local cloud's rules engine and Firehose buffering
(localcloud.rules, localcloud.firehose). The clock is simulated: an hour passes as fast as the work allows. Prints
the figures and writes build/benchmarks/telemetry.json (or `--out`).

Figures: devices, simulated_hours, windows_sent, windows_in_s3 (lines of the delivered objects, read back), objects,
object_megabytes, window_bytes_mean and window_bytes_max (a window as sent), wall_s, peak_rss_mb; `make monitor`'s
work over those objects: monitor_fetch_s (from S3 through its checks to a folder), monitor_query_s (the DuckDB merge
and the drift judgement), monitor_report_s (the HTML), report_megabytes, monitor_flagged (of the drifted); and on
the device's side, what counting costs the subscriber: counting_us_per_message (subscriber.telemetry.Recorder on
batches of 64 publisher messages, binned with the profile) beside scoring_us_per_message (subscriber.processing on
the same).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from localcloud import firehose, moto_aws
from localcloud.hollow import Drift
from localcloud.hollow_telemetry import HollowTelemetry, Reference, Setup
from localcloud.rules import RulesEngine
from scripts.monitoring import drift, queries, report, windows
from scripts.product import REPO

OUT = REPO / "build" / "benchmarks" / "telemetry.json"
ACCOUNT, REGION, BUCKET = "123456789012", "eu-west-1", "bench-telemetry"
STREAM, RULE = "bench-telemetry", "bench_telemetry"
BUFFER_MB, BUFFER_SECONDS = 64, 300  # the module's defaults


class SimulatedClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def real(self, seconds: float) -> float:
        return 0.0


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=300.0, help="seconds between a device's windows")
    parser.add_argument("--drift", default="0.1:alcohol,pH:1.0")
    parser.add_argument("--profile", type=Path, default=REPO / "build" / "model" / "profile.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.devices < 1 or args.hours <= 0 or not args.profile.is_file():
        parser.error("--devices is at least 1, --hours positive, --profile a file (`make model` writes one)")
    return args


def account_side(endpoint: str) -> None:
    """What terraform/modules/telemetry makes, through the same APIs."""
    session = boto3.Session(region_name=REGION, aws_access_key_id="bench", aws_secret_access_key="bench")
    iam, s3, fh, iot = (session.client(s, endpoint_url=endpoint) for s in ("iam", "s3", "firehose", "iot"))
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})

    def role(name: str, service: str, statements: list[dict[str, Any]]) -> str:
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
        policy = {"Version": "2012-10-17", "Statement": statements}
        iam.put_role_policy(RoleName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
        return arn

    delivery = role(
        "bench-delivery",
        "firehose.amazonaws.com",
        [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{BUCKET}/telemetry/*"]}],
    )
    partitions = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    fh.create_delivery_stream(
        DeliveryStreamName=STREAM,
        ExtendedS3DestinationConfiguration={
            "RoleARN": delivery,
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": f"telemetry/windows/{partitions}",
            "BufferingHints": {"SizeInMBs": BUFFER_MB, "IntervalInSeconds": BUFFER_SECONDS},
            "CompressionFormat": "GZIP",
        },
    )
    stream = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{STREAM}"
    rule = role(
        "bench-rule", "iot.amazonaws.com", [{"Effect": "Allow", "Action": ["firehose:PutRecord"], "Resource": [stream]}]
    )
    iot.create_topic_rule(
        ruleName=RULE,
        topicRulePayload={
            "sql": "SELECT *, topic(2) AS device, timestamp() AS received FROM 'edgeml/+/telemetry'",
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": False,
            "actions": [{"firehose": {"deliveryStreamName": STREAM, "roleArn": rule, "separator": "\n"}}],
        },
    )


def device_cost(model_path: Path, profile_path: Path, batches: int = 2000) -> dict[str, float]:
    """The subscriber's own code, in this process: microseconds a message to count it into a window, and to score it."""
    sys.path.insert(0, str(REPO / "components" / "subscriber"))
    from subscriber.inference import Limits, Model
    from subscriber.intake import Message
    from subscriber.processing import MessageProcessor
    from subscriber.profile import Profile
    from subscriber.telemetry import Identity, Recorder

    model = Model(model_path)
    samples = (REPO / "components" / "publisher" / "publisher" / "samples.json").read_text()
    batch = [Message("local/topic", json.dumps({"body": samples}).encode()) for _ in range(64)]
    processor = MessageProcessor(model, Limits(), "1.0.0")
    outcomes = processor.process_batch(batch)
    recorder = Recorder(Identity("bench", "0" * 64, None, "1.0.0", 0.0), Profile.load(profile_path, model.features))
    started = time.perf_counter()
    for _ in range(batches):
        recorder.scored(batch, outcomes, time.monotonic())
    counting = (time.perf_counter() - started) / (batches * len(batch)) * 1e6
    started = time.perf_counter()
    for _ in range(batches // 10):
        processor.process_batch(batch)
    scoring = (time.perf_counter() - started) / (batches // 10 * len(batch)) * 1e6
    return {"counting_us_per_message": round(counting, 2), "scoring_us_per_message": round(scoring, 2)}


def monitor_cost(s3: Any, raw: bytes, drifted: set[str]) -> dict[str, Any]:
    """`make monitor`'s stages over the delivered objects, timed: fetch (with its checks), merge and judge, report."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        windows.fetch(s3, BUCKET, "telemetry/windows", timedelta(hours=2), Path(folder))
        fetched = time.monotonic()
        sha = hashlib.sha256(raw).hexdigest()
        merged = queries.run(Path(folder) / "telemetry")
        assessment = drift.assess(merged, {sha: drift.Reference.of(sha, json.loads(raw))})
        queried = time.monotonic()
        page = report.write(Path(folder) / "report.html", assessment, merged, None, "benchmark")
        reported = time.monotonic()
        flagged = {d.device for d in assessment.devices if d.drifting}
        return {
            "monitor_fetch_s": round(fetched - started, 1),
            "monitor_query_s": round(queried - fetched, 1),
            "monitor_report_s": round(reported - queried, 1),
            "report_megabytes": round(page.stat().st_size / 1e6, 2),
            "monitor_flagged": f"{len(flagged & drifted)} of {len(drifted)} drifted, {len(flagged - drifted)} others",
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request to moto otherwise
    server, endpoint = moto_aws.start()
    try:
        account_side(endpoint)
        raw = args.profile.read_bytes()
        setup = Setup("edgeml", args.window, Reference.of(raw), "0" * 64, "1.0.0")
        clock = SimulatedClock(time.time())
        delivery = firehose.Delivery(ACCOUNT, clock)
        uninstall = firehose.install(delivery)
        engine = RulesEngine(ACCOUNT, REGION, clock)
        sizes: list[int] = []

        def deliver(topic: str, payload: bytes, client: str) -> None:
            sizes.append(len(payload))
            engine.receive(topic, payload, client)

        things = [f"bench-{index:05d}" for index in range(args.devices)]
        telemetry = HollowTelemetry(things, Drift.parse(args.drift), clock, lambda thing: setup, deliver)
        started, end = time.monotonic(), clock.now + args.hours * 3600
        while clock.now < end:
            clock.now = min(end, clock.now + max(1.0, telemetry.step(clock.now)))
            delivery.tick()
        delivery.tick(everything=True)  # what the stream still holds, as it would write it within its interval
        wall = time.monotonic() - started
        uninstall()
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="telemetry/windows/").get("Contents", [])
        monitored = monitor_cost(s3, raw, set(telemetry.drifted()))
        lines = sum(
            len(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()).splitlines()) for o in listed
        )
        return {
            "devices": args.devices,
            "simulated_hours": args.hours,
            "windows_sent": telemetry.sent,
            "windows_in_s3": lines,
            "objects": len(listed),
            "object_megabytes": round(sum(o["Size"] for o in listed) / 1e6, 2),
            "window_bytes_mean": round(sum(sizes) / max(1, len(sizes))),
            "window_bytes_max": max(sizes, default=0),
            "wall_s": round(wall, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            **monitored,
            **device_cost(args.profile.parent / "model.json", args.profile),
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    figures = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:20} {value}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
