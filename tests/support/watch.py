"""The rollout follower's paced clients, pointed at a local cloud's two endpoints (moto for IoT, the Greengrass
endpoint for greengrassv2), as AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_GREENGRASSV2 point them for the tooling."""

from __future__ import annotations

import boto3

from scripts.fleet.pacing import Pacer, Watch


def watch(session: boto3.Session, aws: str, greengrass: str, rate: float = 50.0, pacer: Pacer | None = None) -> Watch:
    pacer = pacer or Pacer(rate)
    return Watch(
        pacer.client(session, "iot", aws),
        pacer.client(session, "greengrassv2", greengrass),
        pacer.client(session, "ecr", aws),
        pacer,
    )
