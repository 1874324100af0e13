"""The GitHub plan role's policy is enough for a real `terraform plan` of the stack, and every statement of it is
needed: the plan runs with the real AWS provider against moto with IAM enforced, as a principal holding that policy
and nothing more.

moto evaluates the resource of S3 and IAM requests, but checks every other service's request against `*`: for ECR,
IoT and KMS, the statements' actions are evaluated here and their resources are asserted exactly by the module's
`terraform test` (terraform/modules/github-plan-role/tests)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud import moto_aws
from tests.conftest import Run
from tests.support import s3state

pytestmark = pytest.mark.slow
REGION, ACCOUNT = "eu-west-1", "123456789012"
RESOURCES_MOTO_EVALUATES = ("s3", "iam")


@pytest.fixture(scope="module")
def stack(terraform: Run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    server, url = moto_aws.start(enforce_iam=True)
    key_id, secret = moto_aws.owner(ACCOUNT)
    owner = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    iam = boto3.client("iam", region_name=REGION, endpoint_url=url, **owner)
    provider = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"],
    )["OpenIDConnectProviderArn"]
    env = {
        "TF_DATA_DIR": str(tmp_path_factory.mktemp("tfdata")),
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": owner["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": owner["aws_secret_access_key"],
    }
    # The state in S3 as a team keeps it (tests/support/s3state), which the role reads and locks, and never writes.
    config, state = s3state.bootstrap(terraform, env, tmp_path_factory.mktemp("tfstate"), "ptest")
    readable = f'state = {{bucket_arn = "arn:aws:s3:::{state.bucket}", key = "{state.key}"}}'
    variables = [
        *("-var", f"region={REGION}", "-var", "s3_use_path_style=true", "-var", "name_prefix=ptest"),
        *("-var", 'core_devices={"ptest-core-1" = {}}'),
        "-var",
        f'github_plan={{repository = "example-org/edge-ml", oidc_provider_arn = "{provider}", {readable}}}',
    ]
    init = terraform("init", "-input=false", f"-backend-config={config}", env=env)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr
    done = terraform("apply", "-auto-approve", "-input=false", "-no-color", *variables, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    policy = iam.get_role_policy(RoleName="ptest-github-plan", PolicyName="plan-this-stack")["PolicyDocument"]
    yield {
        "iam": iam,
        "env": env,
        "variables": variables,
        "policy": policy,
        "state": state,
        "url": url,
        "owner": owner,
        "config": config,
        "scratch": tmp_path_factory,
    }
    terraform("destroy", "-auto-approve", "-input=false", "-no-color", *variables, env=env, timeout=600)
    server.stop()


def as_moto_evaluates(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The statements, with `*` as the resource of services whose requests moto checks against `*` only."""
    widened = copy.deepcopy(statements)
    for statement in widened:
        services = {action.split(":", 1)[0] for action in statement["Action"]}
        if not services <= set(RESOURCES_MOTO_EVALUATES):
            statement["Resource"] = "*"
    return {"Version": "2012-10-17", "Statement": widened}


def holding(stack: dict[str, Any], user: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    """The keys of a new IAM user holding `statements` and nothing more."""
    iam = stack["iam"]
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="plan", PolicyDocument=json.dumps(as_moto_evaluates(statements)))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def plan_as(stack: dict[str, Any], terraform: Run, user: str, statements: list[dict[str, Any]]) -> Any:
    """`terraform init` then `terraform plan` as the workflow runs them: a fresh runner's data folder, the backend's
    settings file, the state's lock. The init's failure, if it fails, else the plan's."""
    keys = holding(stack, user, statements)
    env = {
        **stack["env"],
        "TF_DATA_DIR": str(stack["scratch"].mktemp(user)),
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
    }
    init = terraform("init", "-input=false", "-no-color", f"-backend-config={stack['config']}", env=env)
    if init.returncode != 0:
        return init
    args = ("plan", "-input=false", "-no-color", "-lock-timeout=0s", "-detailed-exitcode", *stack["variables"])
    return terraform(*args, env=env, timeout=300)


def test_the_plan_role_can_plan_the_stack(stack: dict[str, Any], terraform: Run) -> None:
    done = plan_as(stack, terraform, "ci-plan", stack["policy"]["Statement"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr  # 0: the plan ran and found no changes
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=stack["url"], **stack["owner"])
    state = stack["state"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=state.bucket)["Contents"]] == [state.key]  # lock released


def test_the_plan_role_cannot_write_or_delete_the_state_nor_read_another(stack: dict[str, Any]) -> None:
    """S3 evaluates the object's ARN (moto does too): the role's writes are to `<key>.tflock` only."""
    keys = holding(stack, "ci-plan-writes", stack["policy"]["Statement"])
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=stack["url"], **keys)
    state = stack["state"]
    assert json.loads(s3.get_object(Bucket=state.bucket, Key=state.key)["Body"].read())["resources"]
    refusals: tuple[Callable[[], object], ...] = (
        lambda: s3.put_object(Bucket=state.bucket, Key=state.key, Body=b"{}"),
        lambda: s3.delete_object(Bucket=state.bucket, Key=state.key),
        lambda: s3.get_object(Bucket=state.bucket, Key="another-stack/terraform.tfstate"),
        lambda: s3.put_object(Bucket=state.bucket, Key="another-stack/terraform.tfstate.tflock", Body=b"{}"),
    )
    for refused in refusals:
        with pytest.raises(ClientError) as caught:
            refused()
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
    s3.put_object(Bucket=state.bucket, Key=f"{state.key}.tflock", Body=b"{}")  # what the lock is, and all it may write
    s3.delete_object(Bucket=state.bucket, Key=f"{state.key}.tflock")


@pytest.mark.parametrize(
    "sid",
    [
        "ReadTheArtifactBucket",
        "ReadTheRegistry",
        "ReadTheRoles",
        "ReadThePolicies",
        "FindTheIoTEndpoints",
        "FindTheTopicRules",
        "ReadTheIoTResources",
        "ReadTheDeliveryStreams",
        "ReadTheState",
        "LockTheState",
    ],
)
def test_every_statement_is_needed(stack: dict[str, Any], terraform: Run, sid: str, tmp_path: Path) -> None:
    fewer = [s for s in stack["policy"]["Statement"] if s["Sid"] != sid]
    assert len(fewer) == len(stack["policy"]["Statement"]) - 1
    done = plan_as(stack, terraform, f"ci-without-{sid}", fewer)
    assert done.returncode == 1, done.stdout[-3000:]
    # S3 answers a denied HeadObject with a bare 403 (a HEAD has no body to name AccessDenied in).
    assert "AccessDenied" in done.stderr or "StatusCode: 403" in done.stderr, done.stderr[-3000:]
