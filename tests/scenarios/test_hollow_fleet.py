"""A real core beside a hundred hollow ones, in one rollout."""

from __future__ import annotations

import pytest

from scripts.local import sandbox
from tests.support.make import PREDICTION, Make, scripts_json

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_real_core_takes_a_rollout_beside_a_hundred_hollow_ones(make: Make) -> None:
    """`make deploy LOCAL_HOLLOW=100 ROLLOUT=all`: the local cloud's own core and 100 hollow core devices in one
    thing group, one deployment (an IoT job on the group, as the developer guide has it) that every one of them
    takes through the jobs API, followed as a fleet: a summary, not a table of 101 rows, and a prediction from the
    real core. `make rollback` with no earlier desired state says so and changes nothing."""
    sandbox.stop(lambda message: None, make.root)
    done = make("deploy", LOCAL_HOLLOW="100", ROLLOUT="all")
    assert done.returncode == 0, done.stderr
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
    refused = make("rollback")
    assert refused.returncode != 0 and "nothing to roll back" in refused.stderr
    refused = make("plan", LOCAL_HOLLOW="5")
    assert refused.returncode != 0 and "devices are chosen when it starts" in refused.stderr
    done = make("destroy")
    assert done.returncode == 0, done.stderr
