"""Deployments as the full desired state, against the local cloud's greengrassv2 endpoint over HTTP (the service
model's shapes, the service's idempotency: tests/localcloud/test_greengrassv2.py). How a rollout is followed is
tested against the local cloud too (tests/localcloud/test_fleet.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.cloud import running
from scripts.fleet import deployments

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
PUB, SUB, OTHER = "com.edgeml.WineQualityPublisher", "com.edgeml.WineQualitySubscriber", "com.other.Team"


@pytest.fixture
def gg() -> Iterator[Any]:
    """The local cloud's greengrassv2, with the group and a publisher version to deploy."""
    with running("eu-west-1", {}) as local:
        iot = local.client("iot")
        with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
            iot.create_thing_group(thingGroupName=GROUP.rsplit("/", 1)[-1])
        client = local.client("greengrassv2")
        client.create_component_version(
            inlineRecipe=(
                f'{{"RecipeFormatVersion": "2020-01-25", "ComponentName": "{PUB}", "ComponentVersion": "1.0.1", '
                '"Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "true"}}]}'
            ).encode()
        )
        yield client


def test_the_desired_state_keeps_other_components_and_their_configuration() -> None:
    before: deployments.Components = {
        OTHER: {"componentVersion": "3.1.0"},
        PUB: {"componentVersion": "1.0.0", "configurationUpdate": {"merge": '{"interval": 2}'}},
    }
    after = deployments.desired(before, {PUB: {"componentVersion": "1.0.1"}, SUB: {"componentVersion": "1.0.0"}})
    assert after == {
        OTHER: {"componentVersion": "3.1.0"},
        PUB: {"componentVersion": "1.0.1", "configurationUpdate": {"merge": '{"interval": 2}'}},
        SUB: {"componentVersion": "1.0.0"},
    }
    assert [str(c) for c in deployments.changes(before, after)] == [f"~ {PUB} 1.0.0 -> 1.0.1", f"+ {SUB} 1.0.0"]
    assert deployments.changes(after, after) == []
    assert [str(c) for c in deployments.changes(after, {})] == [f"- {PUB} 1.0.1", f"- {SUB} 1.0.0", f"- {OTHER} 3.1.0"]


def test_a_group_never_deployed_to_has_no_components(gg: Any) -> None:
    assert deployments.current(gg, GROUP) == (None, {})


def test_create_rolls_back_on_failure_with_a_timeout_and_the_canary_rollout(gg: Any) -> None:
    """The deployment as the service keeps it: the device rolls a failed one back, components get 60 s to agree to
    an update and to validate a configuration, and the canary preset paces the job: 5 devices a minute, doubled
    after every 10 successes, stopped at 10% failures once 10 ran."""
    components = {PUB: {"componentVersion": "1.0.1"}}
    made = deployments.create(gg, GROUP, "edgeml", components, deployments.Policies(), None)
    assert deployments.current(gg, GROUP) == (made, components)
    held = gg.get_deployment(deploymentId=made)
    assert held["deploymentPolicies"] == {
        "failureHandlingPolicy": "ROLLBACK",
        "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
        "configurationValidationPolicy": {"timeoutInSeconds": 60},
    }
    job = held["iotJobConfiguration"]
    assert job["jobExecutionsRolloutConfig"] == {
        "exponentialRate": {
            "baseRatePerMinute": 5,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 10},
        },
        "maximumPerMinute": 500,
    }
    assert job["abortConfig"] == {
        "criteriaList": [
            {"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 10.0, "minNumberOfExecutedThings": 10}
        ]
    }
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    # A retry of the same request (the same token) is the same deployment.
    assert deployments.create(gg, GROUP, "edgeml", components, deployments.Policies(), None) == made
