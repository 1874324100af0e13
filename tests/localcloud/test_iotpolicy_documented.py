"""The IoT policy evaluator (localcloud.iotpolicy) judged by examples the AWS IoT Core developer guide publishes
with their outcome, not by rules restated here: a second check beside test_iotpolicy.py, whose properties are this
project's own reading of the rules.

- "Basic job policy example" (basic-jobs-example): the statements a single device needs "to receive a job request
  and communicate job execution status"; the topics it then uses are the jobs MQTT API's (jobs-mqtt-api):
  `$aws/things/<thing>/jobs/notify-next`, `.../jobs/$next/get`, `.../jobs/<jobId>/update` and their
  `/accepted` and `/rejected` answers.
- "Using wildcard characters in MQTT and AWS IoT Core policies" (pub-sub-policy): its table's policy examples
  `topicfilter/some/*/topic` and `topic/some/?????/topic`; "+ and # are treated as those characters with no
  special meaning"; "the * character is not confined to a single topic level".
- "AWS IoT Core action resources" (action-resources): iot:Publish and iot:Receive name a `topic/`, iot:Subscribe a
  `topicfilter/`, so a topicfilter resource never allows a publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from localcloud.iotpolicy import Connection, Request, allowed, statements

REGION, ACCOUNT, THING = "us-west-2", "111122223333", "uniqueThingName"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
BASIC_JOB_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": [f"{ARN}:client/{THING}"]},
        {
            "Effect": "Allow",
            "Action": ["iot:Publish"],
            "Resource": [
                f"{ARN}:topic/test/dc/pubtopic",
                f"{ARN}:topic/$aws/events/job/*",
                f"{ARN}:topic/$aws/events/jobExecution/*",
                f"{ARN}:topic/$aws/things/{THING}/jobs/*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Subscribe"],
            "Resource": [
                f"{ARN}:topicfilter/test/dc/subtopic",
                f"{ARN}:topicfilter/$aws/events/jobExecution/*",
                f"{ARN}:topicfilter/$aws/things/{THING}/jobs/*",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Receive"],
            "Resource": [f"{ARN}:topic/test/dc/subtopic", f"{ARN}:topic/$aws/things/{THING}/jobs/*"],
        },
    ],
}
DEVICE = Connection(REGION, ACCOUNT, THING, THING)
JOBS = f"$aws/things/{THING}/jobs"


def judged(document: Mapping[str, Any], request: Request, connection: Connection = DEVICE) -> bool:
    return allowed([statements(document)], request, connection)


@pytest.mark.parametrize(
    "request_",
    [
        DEVICE.connect(),
        DEVICE.subscribe(f"{JOBS}/notify-next"),
        DEVICE.receive(f"{JOBS}/notify-next"),
        DEVICE.publish(f"{JOBS}/$next/get"),
        DEVICE.subscribe(f"{JOBS}/$next/get/accepted"),
        DEVICE.receive(f"{JOBS}/$next/get/accepted"),
        DEVICE.publish(f"{JOBS}/job-1/update"),
        DEVICE.subscribe(f"{JOBS}/job-1/update/rejected"),
        DEVICE.publish("test/dc/pubtopic"),
        DEVICE.subscribe("test/dc/subtopic"),
    ],
    ids=str,
)
def test_the_basic_job_policy_allows_what_its_device_does_with_jobs(request_: Request) -> None:
    assert judged(BASIC_JOB_POLICY, request_)


@pytest.mark.parametrize(
    "request_",
    [
        DEVICE.connect("anotherThing"),  # a client id the policy does not name
        DEVICE.publish("$aws/things/anotherThing/jobs/$next/get"),  # another thing's jobs
        DEVICE.subscribe("$aws/things/anotherThing/jobs/notify-next"),
        DEVICE.publish("test/dc/subtopic"),  # subscribe-and-receive only
        DEVICE.subscribe("test/dc/pubtopic"),  # publish only
        DEVICE.receive("$aws/events/jobExecution/job-1/succeeded"),  # subscribed to, but Receive not granted
    ],
    ids=str,
)
def test_the_basic_job_policy_refuses_what_it_does_not_name(request_: Request) -> None:
    assert not judged(BASIC_JOB_POLICY, request_)


def allow(action: str, resource: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [action], "Resource": [resource]}]}


@pytest.mark.parametrize(
    ("resource", "topic_filter", "outcome"),
    [
        ("topicfilter/some/*/topic", "some/sensor/topic", True),
        ("topicfilter/some/*/topic", "some/+/topic", True),  # `+` is a character the `*` covers
        ("topicfilter/some/*/topic", "some/a/b/topic", True),  # not confined to a single level
        ("topicfilter/some/*/topic", "other/sensor/topic", False),
        ("topicfilter/some/+/topic", "some/+/topic", True),  # the literal filter it names
        ("topicfilter/some/+/topic", "some/sensor/topic", False),  # `+` is no wildcard to a policy
        ("topicfilter/some/#", "some/#", True),
        ("topicfilter/some/#", "some/sensor", False),
    ],
)
def test_the_wildcard_tables_subscribe_examples(resource: str, topic_filter: str, outcome: bool) -> None:
    assert judged(allow("iot:Subscribe", f"{ARN}:{resource}"), DEVICE.subscribe(topic_filter)) is outcome


@pytest.mark.parametrize(
    ("topic", "outcome"),
    [("some/abcde/topic", True), ("some/abcd/topic", False), ("some/abcdef/topic", False)],
)
def test_the_wildcard_tables_question_mark_example_is_one_character_each(topic: str, outcome: bool) -> None:
    assert judged(allow("iot:Publish", f"{ARN}:topic/some/?????/topic"), DEVICE.publish(topic)) is outcome


def test_a_topicfilter_resource_never_allows_a_publish() -> None:
    document = allow("iot:*", f"{ARN}:topicfilter/some/topic")
    assert judged(document, DEVICE.subscribe("some/topic"))
    assert not judged(document, DEVICE.publish("some/topic"))
