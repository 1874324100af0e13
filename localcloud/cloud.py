"""The local cloud's services, without any device: moto (S3, ECR, IAM, IoT, STS) and the Greengrass endpoint
(greengrassv2, the IoT jobs data plane, the IoT credentials provider), with IoT's job operations answered from
the Greengrass side's jobs and the jobs moved forward a few times a second.

The stack (localcloud.stack) adds the registry, the broker and the core devices; the fleet benchmark uses it as it
is, with hollow devices.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from localcloud import credentials, ecr_front, iam_users, moto_aws
from localcloud.credentials import CredentialsProvider
from localcloud.greengrassv2 import ControlPlane
from localcloud.identities import Identities
from localcloud.registry import RegistryApi
from localcloud.server import Endpoint, serve
from localcloud.sigv4 import Guard
from localcloud.throttle import Throttle
from recipeformat import digest

ACCOUNT = "123456789012"  # moto's account
ADVANCE_INTERVAL = 0.25  # real seconds between two moves of the jobs: rollout windows, time-outs, abort criteria


@dataclass(frozen=True)
class Cloud:
    aws: str  # moto's endpoint
    greengrass: str  # the Greengrass endpoint
    region: str
    owner: tuple[str, str]  # the access key id and secret of the IAM user that may do everything
    plane: ControlPlane
    registry: str | None = None  # host:port of ECR's registry endpoint, as repository URIs name it

    def client(self, service: str, **config: Any) -> Any:
        session = boto3.Session(
            region_name=self.region, aws_access_key_id=self.owner[0], aws_secret_access_key=self.owner[1]
        )
        endpoint = self.greengrass if service in ("greengrassv2", "iot-jobs-data") else self.aws
        return session.client(service, endpoint_url=endpoint, **config)


def digests(s3: Any) -> Callable[[str], str | None]:
    """An `s3://bucket/key` artifact's digest, None when it cannot be read: what the service computes when a version
    is created."""

    def of(uri: str) -> str | None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError:
            return None
        return digest.of_chunks(body.iter_chunks(digest.CHUNK))

    return of


@contextlib.contextmanager
def running(
    region: str,
    device_keys: dict[str, str],
    registry: str | None = None,
    throttle: Throttle | None = None,
    clock: Callable[[], float] = time.time,
    registry_password: str | None = None,
) -> Iterator[Cloud]:
    """Every request must be signed with the owner's key or one of `device_keys` (key id -> secret). ECR is bound to
    the `registry` (host:port); given its `registry_password` (a registry only the stack can use), ECR's registry
    endpoint is a front that authorizes each call as the identity whose token it carries (localcloud.ecr_front)."""
    with contextlib.ExitStack() as parts:
        public = registry
        if registry is not None and registry_password is None:
            parts.callback(moto_aws.bind_ecr_to_registry(RegistryApi(registry)))
        elif registry is not None:
            tokens = ecr_front.Tokens()
            checks = ecr_front.Front(
                registry, registry_password, tokens, moto_aws.repository_arns(ACCOUNT, region), ACCOUNT
            )
            front, public = ecr_front.serve(checks)
            parts.callback(front.shutdown)
            parts.callback(moto_aws.bind_ecr_to_registry(RegistryApi(registry, registry_password), public, tokens))
        moto, aws_url = moto_aws.start(enforce_iam=True)
        parts.callback(moto.stop)
        owner = moto_aws.owner(ACCOUNT, f"localcloud-owner-{secrets.token_hex(4)}")
        session = boto3.Session(region_name=region, aws_access_key_id=owner[0], aws_secret_access_key=owner[1])
        iot, s3 = (session.client(service, endpoint_url=aws_url) for service in ("iot", "s3"))
        plane = ControlPlane(region, ACCOUNT, moto_aws.iot_members(ACCOUNT, region), digests(s3), clock)
        # The owner's key and any fixed ones are the stack's; a device signs with its certificate's.
        identities = Identities(
            {owner[0]: owner[1], **device_keys}, moto_aws.certificates(ACCOUNT, region), iam_users.lookup(ACCOUNT)
        )
        endpoint = Endpoint(
            plane,
            CredentialsProvider(iot, moto_aws.service_assumer(ACCOUNT, credentials.SERVICE)),
            throttle,
            identities,
        )
        moto_aws.bind_iot_jobs(endpoint.invoke)
        server, gg_url = serve(endpoint, guard=Guard(identities.secret, region))
        parts.callback(server.shutdown)
        stop = threading.Event()
        advancing = threading.Thread(target=_advance, args=(plane, stop), daemon=True, name="jobs-advance")
        advancing.start()
        parts.callback(advancing.join)
        parts.callback(stop.set)
        yield Cloud(aws_url, gg_url, region, owner, plane, public)


def _advance(plane: ControlPlane, stop: threading.Event) -> None:
    while not stop.wait(ADVANCE_INTERVAL):
        with plane.lock:
            plane.jobs.advance()
