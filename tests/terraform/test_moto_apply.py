"""`terraform apply` with the real AWS provider against moto as a real HTTP endpoint; every policy read back with
boto3 and compared exactly; re-plan shows no changes; destroy leaves nothing.

moto lacks IoT tagging, which the provider needs: localcloud/moto_aws.py adds it."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from localcloud import core_mqtt, firehose, iotpolicy, moto_aws
from localcloud.rules import RulesEngine
from localcloud.service_role import NotPermitted, ServiceRoles
from scripts import tfoutputs
from scripts.cloud import infra
from tests.conftest import REPO, Run
from tests.support import s3state

pytestmark = pytest.mark.slow
REGION = "eu-west-1"
CORE = "itest-core-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server, url = moto_aws.start()
    yield url
    server.stop()


@pytest.fixture(scope="module")
def env(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        # Its own data folder: the backend configuration below never touches terraform/.terraform.
        "TF_DATA_DIR": str(tmp_path_factory.mktemp("tfdata")),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
    }


@pytest.fixture(scope="module")
def applied(terraform: Run, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack applied as a team applies it: its state in the bucket terraform/state made (tests/support/s3state)."""
    config, bucket = s3state.bootstrap(terraform, env, tmp_path_factory.mktemp("tfstate"), "itest")
    # Every version kept, as the local stack does: the lifecycle rule's minute of provider waiting is spent in
    # test_plan_role.py, whose apply keeps the default (30 days) and whose plan must read it.
    kept = tmp_path_factory.mktemp("vars") / "kept.tfvars.json"
    kept.write_text(json.dumps({"noncurrent_version_days": None, "telemetry_retention_days": None}))
    variables = [
        *("-var", f"region={REGION}", "-var", "s3_use_path_style=true", "-var", "name_prefix=itest"),
        *("-var", f'core_devices={{"{CORE}" = {{}}}}', "-var-file", str(kept)),
    ]
    init = terraform("init", "-input=false", f"-backend-config={config}", env=env)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr
    done = terraform("apply", "-auto-approve", "-input=false", "-no-color", *variables, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "Deprecated" not in done.stdout + done.stderr
    outputs = json.loads(terraform("output", "-json", env=env).stdout)
    yield {"bucket": bucket, "variables": variables, "outputs": {k: v["value"] for k, v in outputs.items()}}


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_outputs_satisfy_the_scripts(applied: dict[str, Any], env: dict[str, str], tmp_path: Path) -> None:
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps({k: {"value": v} for k, v in applied["outputs"].items()}))
    values = tfoutputs.from_file(saved)
    assert values.artifact_bucket == f"itest-artifacts-123456789012-{REGION}"
    assert values.thing_group_name == "itest-cores"
    # The same values as the tooling reads them, straight from the applied state its backend names (in S3: the
    # workspace's endpoint and keys reach it, and nothing of this process's environment is changed).
    assert infra.outputs(infra.Workspace("aws", env=env, workdir=REPO / "terraform")) == values


def test_the_state_is_in_its_bucket_which_keeps_every_version_private_and_encrypted(
    applied: dict[str, Any], endpoint: str
) -> None:
    """After the apply the bucket holds the state and no lock (released); the bucket is as terraform/state says."""
    s3, bucket = client("s3", endpoint), applied["bucket"]
    assert bucket.key == "itest/terraform.tfstate" and bucket.bucket == f"itest-tfstate-123456789012-{REGION}"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket.bucket)["Contents"]]
    assert keys == [bucket.key]  # the lock file was deleted when the apply ended
    state = json.loads(s3.get_object(Bucket=bucket.bucket, Key=bucket.key)["Body"].read())
    assert {r["type"] for r in state["resources"]} >= {"aws_s3_bucket", "aws_ecr_repository", "aws_iam_role"}
    assert s3.get_bucket_versioning(Bucket=bucket.bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    (rule,) = s3.get_bucket_encryption(Bucket=bucket.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=bucket.bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_token_exchange_role_read_back_exactly(applied: dict[str, Any], endpoint: str) -> None:
    iam = client("iam", endpoint)
    role = iam.get_role(RoleName="itest-token-exchange")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "credentials.iot.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    policy = iam.get_role_policy(RoleName="itest-token-exchange", PolicyName="least-privilege")["PolicyDocument"]
    bucket = applied["outputs"]["artifact_bucket"]
    assert policy["Statement"] == [
        {
            "Sid": "ReadComponentArtifacts",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/artifacts/*"],
        },
        {
            "Sid": "LocateTheArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
        },
        {
            "Sid": "PullComponentImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [applied["outputs"]["repository_arn"]],
        },
        {"Sid": "LogInToTheRegistry", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
    ]
    # The logs statement sits in the policy named as the installer names its own (DeviceProvisioningHelper
    # createAndAttachRolePolicy: `<role>Access`), so the installer's CreatePolicy finds it taken and adds nothing.
    attached = iam.list_attached_role_policies(RoleName="itest-token-exchange")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["itest-token-exchangeAccess"]
    managed = iam.get_policy(PolicyArn=attached[0]["PolicyArn"])["Policy"]
    document = iam.get_policy_version(PolicyArn=managed["Arn"], VersionId=managed["DefaultVersionId"])
    assert document["PolicyVersion"]["Document"]["Statement"] == [
        {
            "Sid": "WriteGreengrassLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/greengrass/*"],
        }
    ]


def test_role_alias_and_iot_policy_read_back_exactly(applied: dict[str, Any], endpoint: str) -> None:
    """One policy per core device, naming it literally (developer guide, device-auth: thing policy variables are not
    supported for core devices); no HTTP shadow statement."""
    iot = client("iot", endpoint)
    alias = iot.describe_role_alias(roleAlias="itest-token-exchange")["roleAliasDescription"]
    assert alias["roleArn"] == applied["outputs"]["token_exchange_role_arn"]
    assert applied["outputs"]["iot_policy_names"] == {CORE: f"itest-core-{CORE}"}
    document = json.loads(iot.get_policy(policyName=f"itest-core-{CORE}")["policyDocument"])
    arn = f"arn:aws:iot:{REGION}:123456789012"
    things = f"$aws/things/{CORE}"
    assert [(s["Sid"], s["Action"], s["Resource"]) for s in document["Statement"]] == [
        ("ConnectAsItsOwnThing", ["iot:Connect"], [f"{arn}:client/{CORE}", f"{arn}:client/{CORE}#*"]),
        (
            "PublishAndReceiveOnItsOwnTopics",
            ["iot:Publish", "iot:Receive"],
            [
                f"{arn}:topic/{things}/jobs/*",
                f"{arn}:topic/{things}/shadow/*",
                f"{arn}:topic/{things}/greengrassv2/health/json",
                f"{arn}:topic/{things}/greengrass/health/json",
                f"{arn}:topic/edgeml/{CORE}/*",
            ],
        ),
        (
            "SubscribeToItsOwnTopics",
            ["iot:Subscribe"],
            [
                f"{arn}:topicfilter/{things}/jobs/*",
                f"{arn}:topicfilter/{things}/shadow/*",
                f"{arn}:topicfilter/edgeml/{CORE}/*",
            ],
        ),
        ("AssumeTheTokenExchangeRole", ["iot:AssumeRoleWithCertificate"], [alias["roleAliasArn"]]),
        (
            "GreengrassDataPlane",
            [
                "greengrass:GetComponentVersionArtifact",
                "greengrass:ResolveComponentCandidates",
                "greengrass:GetDeploymentConfiguration",
                "greengrass:ListThingGroupsForCoreDevice",
            ],
            ["*"],
        ),
    ]
    assert all(s["Effect"] == "Allow" for s in document["Statement"])


def test_the_core_policy_allows_every_mqtt_request_a_core_makes(applied: dict[str, Any], endpoint: str) -> None:
    """The policy as applied, evaluated with IoT Core's rules (localcloud.iotpolicy) for each request of the core
    (localcloud.core_mqtt: its own client id and `#2`/`#3`, jobs, the deployment shadow, fleet status) and of a
    component publishing its predictions through mqttproxy under the telemetry prefix."""
    document = client("iot", endpoint).get_policy(policyName=f"itest-core-{CORE}")["policyDocument"]
    telemetry = {
        "accessControl": {
            core_mqtt.MQTTPROXY: {
                "p:1": {"operations": ["aws.greengrass#PublishToIoTCore"], "resources": [f"edgeml/{CORE}/predictions"]},
                "p:2": {"operations": ["aws.greengrass#SubscribeToIoTCore"], "resources": [f"edgeml/{CORE}/+/model"]},
            }
        }
    }
    proxied = core_mqtt.ProxiedTopics.of([telemetry])
    assert core_mqtt.refused(CORE, REGION, "123456789012", [iotpolicy.statements(document)], proxied) == []
    # ... and nothing of another device, nor a client id that only starts with its name.
    other = core_mqtt.refused("itest-core-10", REGION, "123456789012", [iotpolicy.statements(document)])
    assert len(other) == len(core_mqtt.requests("itest-core-10", REGION, "123456789012"))


def test_bucket_and_repository_hardening_read_back(applied: dict[str, Any], endpoint: str) -> None:
    s3, ecr = client("s3", endpoint), client("ecr", endpoint)
    bucket = applied["outputs"]["artifact_bucket"]
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Statement"][0]["Effect"] == "Deny"
    (repository,) = ecr.describe_repositories(repositoryNames=["itest/subscriber"])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"]["scanOnPush"] is True
    lifecycle = json.loads(ecr.get_lifecycle_policy(repositoryName="itest/subscriber")["lifecyclePolicyText"])
    assert lifecycle["rules"][0]["selection"]["countNumber"] == 30


@pytest.fixture
def delivery() -> Iterator[firehose.Delivery]:
    """The local cloud's Firehose buffering in place of moto's write-per-record, for this test only."""
    buffered = firehose.Delivery("123456789012")
    uninstall = firehose.install(buffered)
    yield buffered
    uninstall()


def test_the_telemetry_rule_delivers_windows_to_s3_in_batches_through_firehose(
    applied: dict[str, Any], endpoint: str, delivery: firehose.Delivery
) -> None:
    """The rule and the stream as Terraform made them, run by the local cloud's rules engine and Firehose: windows
    on <prefix>/<thing>/telemetry reach one gzip object (JSON lines, the device named by the topic) under
    telemetry/windows/year=/month=/day=/hour=/; a message on another topic triggers nothing (AWS IoT SQL reference,
    FROM; Firehose developer guide, buffering hints and custom prefixes)."""
    engine = RulesEngine("123456789012", REGION)
    windows = [{"schema": "edgeml.telemetry/1", "seq": seq, "messages": 10 + seq} for seq in range(3)]
    for window in windows:
        assert engine.receive(f"edgeml/{CORE}/telemetry", json.dumps(window).encode()) == 1
    assert engine.receive(f"edgeml/{CORE}/predictions", b"{}") == 0
    delivery.tick(everything=True)
    s3, bucket = client("s3", endpoint), applied["outputs"]["artifact_bucket"]
    prefix = applied["outputs"]["telemetry_object_prefix"] + "/windows"
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")["Contents"]]
    assert re.fullmatch(
        rf"{prefix}/year=\d{{4}}/month=\d\d/day=\d\d/hour=\d\d/itest-telemetry-1-[-\d]+-[-a-f0-9]+\.gz", key
    )
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode().splitlines()
    delivered = [json.loads(line) for line in lines]
    assert [d["seq"] for d in delivered] == [0, 1, 2]
    assert {d["device"] for d in delivered} == {CORE} and all(isinstance(d["received"], int) for d in delivered)
    # The bucket is emptied by `make destroy` (scripts' teardown); this stack is destroyed by Terraform alone.
    for version in s3.list_object_versions(Bucket=bucket, Prefix=f"{prefix}/").get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


def test_the_telemetry_roles_may_write_only_under_the_telemetry_prefix(
    applied: dict[str, Any], endpoint: str, delivery: firehose.Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    """Each role as Terraform made it, used by its service: the delivery role writes under telemetry/ and nowhere
    else (a stream pointed elsewhere with it writes nothing and logs S3.AccessDenied, as Firehose's error log does);
    the rule's role puts into its own stream only."""
    iam, bucket = client("iam", endpoint), applied["outputs"]["artifact_bucket"]
    delivery_role = iam.get_role(RoleName="itest-telemetry-delivery")["Role"]["Arn"]
    rule_role = iam.get_role(RoleName="itest-telemetry-rule")["Role"]["Arn"]
    writer = ServiceRoles("123456789012", "firehose.amazonaws.com")
    writer.check(delivery_role, "s3:PutObject", f"arn:aws:s3:::{bucket}/telemetry/windows/x.gz")
    for elsewhere in (
        f"{bucket}/artifacts/com.itest.Model/x.json",
        f"{bucket}/telemetryx/y",
        "other-bucket/telemetry/z",
    ):
        with pytest.raises(NotPermitted, match="not authorized"):
            writer.check(delivery_role, "s3:PutObject", f"arn:aws:s3:::{elsewhere}")
    with pytest.raises(NotPermitted, match=r"does not let iot\.amazonaws\.com"):
        ServiceRoles("123456789012", "iot.amazonaws.com").check(delivery_role, "s3:PutObject", "*")
    rules = ServiceRoles("123456789012", "iot.amazonaws.com")
    stream = f"arn:aws:firehose:{REGION}:123456789012:deliverystream/itest-telemetry"
    rules.check(rule_role, "firehose:PutRecord", stream)
    with pytest.raises(NotPermitted):
        rules.check(rule_role, "firehose:PutRecord", stream + "-other")
    # The delivery role given to a stream that writes under another prefix: nothing is written.
    fh = client("firehose", endpoint)
    fh.create_delivery_stream(
        DeliveryStreamName="itest-elsewhere",
        ExtendedS3DestinationConfiguration={
            "RoleARN": delivery_role,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "artifacts/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )
    try:
        fh.put_record(DeliveryStreamName="itest-elsewhere", Record={"Data": b"{}\n"})
        with caplog.at_level(logging.ERROR, logger="localcloud.firehose"):
            delivery.tick(everything=True)
        assert "itest-elsewhere: S3.AccessDenied" in caplog.text
        listed = client("s3", endpoint).list_objects_v2(Bucket=bucket, Prefix="artifacts/").get("Contents", [])
        assert not [o for o in listed if "itest-elsewhere" in o["Key"]]
    finally:
        fh.delete_delivery_stream(DeliveryStreamName="itest-elsewhere")


def test_replan_shows_no_changes(terraform: Run, env: dict[str, str], applied: dict[str, Any]) -> None:
    done = terraform(
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        *applied["variables"],
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_destroy_leaves_nothing(terraform: Run, env: dict[str, str], applied: dict[str, Any], endpoint: str) -> None:
    done = terraform(
        "destroy",
        "-auto-approve",
        "-input=false",
        "-no-color",
        *applied["variables"],
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    # moto's backends are shared by every server in this process: look at what this stack (`itest`) made. Its
    # state's bucket is not the stack's: it stays, with a state that holds nothing.
    s3, state = client("s3", endpoint), applied["bucket"]
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("itest")]
    assert buckets == [state.bucket]
    assert json.loads(s3.get_object(Bucket=state.bucket, Key=state.key)["Body"].read())["resources"] == []
    assert [
        r["repositoryName"]
        for r in client("ecr", endpoint).describe_repositories()["repositories"]
        if r["repositoryName"].startswith("itest")
    ] == []
    iot = client("iot", endpoint)
    assert [g["groupName"] for g in iot.list_thing_groups()["thingGroups"] if g["groupName"].startswith("itest")] == []
    assert [a for a in iot.list_role_aliases()["roleAliases"] if a.startswith("itest")] == []
    assert [p["policyName"] for p in iot.list_policies()["policies"] if p["policyName"].startswith("itest")] == []
    assert [
        r["RoleName"] for r in client("iam", endpoint).list_roles()["Roles"] if r["RoleName"].startswith("itest")
    ] == []
