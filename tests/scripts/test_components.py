"""Component registration against the local cloud's greengrassv2 endpoint over HTTP: versions bumped as asked, a
new version waited for until DEPLOYABLE, throttling that outlasts the retries one clear error. Registration reusing
an unchanged version is tested there too (tests/localcloud/test_greengrassv2.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config

from localcloud.cloud import Cloud, running
from localcloud.throttle import Throttle
from scripts.aws import AwsError
from scripts.publishing import components

REGION, ACCOUNT = "eu-west-1", "123456789012"
NAME = "com.edgeml.WineQualityPublisher"
ARN = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:{NAME}"


def values(name: str) -> dict[str, str]:
    return {"artifact_uri": f"s3://bucket/artifacts/{NAME}/{name}/publisher.zip"}


@contextlib.contextmanager
def local_cloud(throttle: Throttle | None = None) -> Iterator[Cloud]:
    """The local cloud, with the artifacts the recipes name (the service checks it can read them)."""
    with running(REGION, {}, throttle=throttle) as local:
        s3 = local.client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # moto's state outlives one local cloud
            s3.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
        for name in ("a", "b", "c", "d"):
            s3.put_object(Bucket="bucket", Key=f"artifacts/{NAME}/{name}/publisher.zip", Body=name.encode())
        yield local


@pytest.fixture
def gg() -> Iterator[Any]:
    with local_cloud() as local:
        yield local.client("greengrassv2")


def test_the_first_registration_is_1_0_0_and_waits_until_deployable(gg: Any) -> None:
    """A new version is REQUESTED first (CloudComponentStatus): register returns once DescribeComponent says
    DEPLOYABLE, so a deployment made next never names a version the service cannot deploy yet."""
    registered = components.register(gg, "publisher", NAME, values("a"), REGION, ACCOUNT)
    assert registered == components.Registered(NAME, "1.0.0", f"{ARN}:versions:1.0.0", created=True)
    assert gg.describe_component(arn=registered.arn)["status"]["componentState"] == "DEPLOYABLE"


def test_a_changed_recipe_creates_the_version_its_bump_asks_for(gg: Any) -> None:
    made = [
        components.register(gg, "publisher", NAME, values(name), REGION, ACCOUNT, bump=bump).version
        for name, bump in (("a", "patch"), ("b", "patch"), ("c", "minor"), ("d", "major"))
    ]
    assert made == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    versions = gg.list_component_versions(arn=ARN)["componentVersions"]
    assert [v["componentVersion"] for v in versions] == ["2.0.0", "1.1.0", "1.0.1", "1.0.0"]


def test_throttling_that_outlasts_the_retries_is_one_clear_error() -> None:
    """The service's ThrottlingException until the client gives up: one line naming the action, not a traceback.
    The throttle's clock stands still, so after its one token every request is over the rate."""
    with local_cloud(Throttle.parse("ListComponentVersions=1", clock=lambda: 0.0)) as local:
        gg = local.client("greengrassv2", config=Config(retries={"max_attempts": 2, "mode": "standard"}))
        gg.list_component_versions(arn=ARN)  # the one token
        with pytest.raises(AwsError, match=r"list the versions of .*still throttled after"):
            components.register(gg, "publisher", NAME, values("a"), REGION, ACCOUNT)


class NeverDeployable:
    """A mock, where the local cloud has no real part: it never leaves a version FAILED after creating it (an
    unreadable artifact is refused at CreateComponentVersion instead) nor REQUESTED for long. DescribeComponent's
    answers here are shaped as the API reference's CloudComponentStatus."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status, self.calls = status, 0

    def describe_component(self, arn: str) -> dict[str, Any]:
        self.calls += 1
        return {"arn": arn, "status": self.status}


def test_a_version_that_fails_shows_its_errors() -> None:
    failed = NeverDeployable(
        {"componentState": "FAILED", "message": "artifact check failed", "errors": {"s3://b/x.zip": "ACCESS_DENIED"}}
    )
    with pytest.raises(components.ComponentError, match=r"FAILED: artifact check failed s3://b/x\.zip: ACCESS_DENIED"):
        components.wait_deployable(failed, f"{ARN}:versions:1.0.0", attempts=3, sleep=lambda s: None)
    assert failed.calls == 1


def test_a_version_that_never_becomes_deployable_times_out() -> None:
    stuck = NeverDeployable({"componentState": "REQUESTED"})
    with pytest.raises(components.ComponentError, match="still REQUESTED after 3 checks"):
        components.wait_deployable(stuck, f"{ARN}:versions:1.0.0", attempts=3, sleep=lambda s: None)
    assert stuck.calls == 3
