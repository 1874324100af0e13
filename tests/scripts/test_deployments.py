"""Deployments as the full desired state, against greengrassv2 through botocore's Stubber: exact parameters,
checked against the real service model. How a rollout is followed is tested against the local cloud
(tests/localcloud/test_fleet.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scripts.fleet import deployments

GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-cores"
PUB, SUB, OTHER = "com.edgeml.WineQualityPublisher", "com.edgeml.WineQualitySubscriber", "com.other.Team"


@pytest.fixture
def gg() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("greengrassv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


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


def test_current_reads_the_latest_deployment_of_the_group(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    stubber.add_response(
        "list_deployments",
        {
            "deployments": [
                {"deploymentId": "old", "isLatestForTarget": False, "targetArn": GROUP},
                {"deploymentId": "d-2", "isLatestForTarget": True, "targetArn": GROUP},
            ]
        },
        {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"},
    )
    stubber.add_response(
        "get_deployment",
        {"deploymentId": "d-2", "components": {PUB: {"componentVersion": "1.0.0"}}},
        {"deploymentId": "d-2"},
    )
    assert deployments.current(client, GROUP) == ("d-2", {PUB: {"componentVersion": "1.0.0"}})


def test_a_group_never_deployed_to_has_no_components(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    stubber.add_response("list_deployments", {"deployments": []}, {"targetArn": GROUP, "historyFilter": "LATEST_ONLY"})
    assert deployments.current(client, GROUP) == (None, {})


def test_create_rolls_back_on_failure_with_a_timeout_and_a_stable_token(gg: tuple[Any, Stubber]) -> None:
    client, stubber = gg
    components = {PUB: {"componentVersion": "1.0.1"}}
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-3"},
        {
            "targetArn": GROUP,
            "deploymentName": "edgeml",
            "components": components,
            "deploymentPolicies": {
                "failureHandlingPolicy": "ROLLBACK",
                "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
                "configurationValidationPolicy": {"timeoutInSeconds": 60},
            },
            # The canary preset: 5 devices a minute, doubled after every 10 successes, stopped at 10% failures.
            "iotJobConfiguration": {
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {
                        "baseRatePerMinute": 5,
                        "incrementFactor": 2.0,
                        "rateIncreaseCriteria": {"numberOfSucceededThings": 10},
                    },
                    "maximumPerMinute": 500,
                },
                "abortConfig": {
                    "criteriaList": [
                        {
                            "failureType": "ALL",
                            "action": "CANCEL",
                            "thresholdPercentage": 10.0,
                            "minNumberOfExecutedThings": 10,
                        }
                    ]
                },
                "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
            },
            "clientToken": hashlib.sha256(json.dumps([GROUP, "d-2", components], sort_keys=True).encode()).hexdigest()[
                :64
            ],
        },
    )
    assert deployments.create(client, GROUP, "edgeml", components, deployments.Policies(), "d-2") == "d-3"
