"""A real core beside a hundred hollow ones, in one rollout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scripts.local import sandbox
from tests.support.eventually import eventually
from tests.support.make import PREDICTION, Make, scripts_json

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_real_core_takes_a_rollout_beside_a_hundred_hollow_ones(make: Make, seed: Path) -> None:
    """`make deploy LOCAL_HOLLOW=100 ROLLOUT=all`: the local cloud's own core and 100 hollow core devices in one
    thing group, one deployment (an IoT job on the group, as the developer guide has it) that every one of them
    takes through the jobs API, followed as a fleet: a summary, not a table of 101 rows, and a prediction from the
    real core. Their telemetry reaches S3 through the rule and Firehose, binned with the profile PROFILE_DATA made for
    the model brought along; LOCAL_DRIFT moves a tenth of the devices' alcohol. `make rollback` with no earlier
    desired state says so and changes nothing."""
    sandbox.stop(lambda message: None, make.root)
    done = make(
        "deploy",
        LOCAL_HOLLOW="100",
        ROLLOUT="all",
        PROFILE_DATA=str(seed / "wine_concat.csv"),
        LOCAL_DRIFT="0.1:alcohol:2.0",
    )
    assert done.returncode == 0, done.stderr
    assert "reference profile" in done.stdout
    cloud = make.cloud()
    assert cloud.hollow == 100
    assert "101/101 devices reached (101 succeeded)" in done.stdout
    assert f"prediction on {cloud.thing}: {PREDICTION}" in done.stdout
    assert "hollow-00042" not in done.stdout  # no per-device table for a large group
    status = scripts_json(make, "status")
    assert status["fleet"]["devices"] == 101 and status["fleet"]["executions"]["succeeded"] == 101
    deployment = make.client("greengrassv2").get_deployment(deploymentId=status["deployment"])
    assert deployment["iotJobConfiguration"]["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 1000}
    job = make.client("iot").describe_job(jobId=deployment["iotJobId"])["job"]
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 101
    telemetry_of_a_drifting_fleet(make)
    refused = make("rollback")
    assert refused.returncode != 0 and "nothing to roll back" in refused.stderr
    refused = make("plan", LOCAL_HOLLOW="5")
    assert refused.returncode != 0 and "devices are chosen when it starts" in refused.stderr
    done = make("destroy")
    assert done.returncode == 0, done.stderr


def telemetry_of_a_drifting_fleet(make: Make) -> None:
    """Hollow devices' windows in S3 (localcloud.hollow_telemetry): every hollow device sends, each window binned with
    the reference the model component ships, and the drifted tenth's alcohol sits higher than the rest's."""
    cloud, s3 = make.cloud(), make.client("s3")
    bucket = f"{make.prefix}-artifacts-{cloud.account}-{cloud.region}"

    def delivered() -> list[dict[str, Any]]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="telemetry/windows/").get("Contents", [])
        bodies = [gzip.decompress(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]
        return [json.loads(line) for body in bodies for line in body.decode().splitlines()]

    def from_every_hollow_device() -> list[dict[str, Any]]:
        windows = [w for w in delivered() if "hollow" in w["thing"]]
        return windows if len({w["thing"] for w in windows}) == 100 else []

    windows = eventually(from_every_hollow_device, 180, 5, "a window from each of the 100 hollow devices")
    assert len({w["profile"] for w in windows}) == 1 and windows[0]["profile"] is not None
    alcohol = 10  # wine.FEATURES' order, the profile's: the eleventh feature

    def mean_bin(thing_windows: list[dict[str, Any]]) -> float:
        counts = np.sum([w["features"][alcohol] for w in thing_windows], axis=0)
        return float(np.average(np.arange(len(counts)), weights=counts)) if counts.sum() else 0.0

    by_thing: dict[str, list[dict[str, Any]]] = {}
    for window in windows:
        by_thing.setdefault(window["thing"], []).append(window)
    means = sorted(mean_bin(w) for w in by_thing.values() if sum(x["records"] for x in w))
    # Two standard deviations up moves a drifted device's alcohol bins far above the training's (about 5.5 of
    # 0..11): the top tenth of devices stand apart from the rest.
    assert means[-1] > means[len(means) // 2] + 2
