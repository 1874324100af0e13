"""`make deploy`, `make status` and `make destroy` on the local target from a shell that holds the user's own AWS
settings, as the people this kit is for have them: an SSO session token, a profile (and a default one) of a config
file whose credential_process fails, a credentials file that is not there, another Region, and the rest of what
botocore and the Terraform AWS provider read. The local stack works, and none of it reaches any process of the stack:
Terraform (seen through a `terraform` first on the PATH that records its environment, then runs the real one), the
local cloud, its core (in the cloud's process) and the core's components, the subscriber's container included.

The variables are those botocore documents (its session variables and credential providers: the boto3 guide's
"Configuration" and "Credentials" pages) and the Terraform AWS provider documents ("Environment Variables",
"Shared Configuration and Credentials Files", "Assuming an IAM Role Using A Web Identity", "Container credentials").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import Run
from tests.support import checkout
from tests.support.make import PREDICTION, Make

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MARK = "users-own-value"
DOCUMENTED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_IOT",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_GREENGRASSV2",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_DATA_PATH",
    "AWS_CSM_ENABLED",
    "AWS_DEFAULTS_MODE",
    "AWS_SDK_UA_APP_ID",
    "AWS_ACCOUNT_ID",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
)


def users_shell(folder: Path) -> dict[str, str]:
    """Every documented variable set to something of the user's; the ones the issue names, set as a user has them."""
    config = folder / "aws-config"
    config.write_text(
        "[profile sso-dev]\ncredential_process = /bin/false\nregion = us-east-1\n"
        "[default]\ncredential_process = /bin/false\n"
    )
    shell = {name: f"{MARK}-{name.lower()}" for name in DOCUMENTED}
    shell.update(
        {
            "AWS_SESSION_TOKEN": f"{MARK}-sso-session-token",
            "AWS_PROFILE": "sso-dev",
            "AWS_DEFAULT_PROFILE": "sso-dev",
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(folder / "nowhere" / "credentials"),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": "https://aws.example.invalid",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_USE_FIPS_ENDPOINT": "true",
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    return shell


class InTheUsersShell(Make):
    """`make` in a copy of the checkout, run from the user's shell: its AWS settings, and a PATH whose first
    `terraform` records the environment it was given."""

    def __init__(self, repo: Path, model: Path, shell: dict[str, str], seen: Path) -> None:
        super().__init__(repo, model)
        probe = repo / "build" / "probe"
        probe.mkdir(parents=True)
        real = shutil.which("terraform")
        assert real is not None
        (probe / "terraform").write_text(f'#!/bin/sh\nenv -0 > "{seen}/terraform.$$"\nexec {real} "$@"\n')
        (probe / "terraform").chmod(0o755)
        self.shell = {**shell, "PATH": f"{probe}:{os.environ['PATH']}"}

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.shell}


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("environments")


@pytest.fixture(scope="module")
def make(
    terraform: Run, seed: Path, seen: Path, docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InTheUsersShell]:
    folder = tmp_path_factory.mktemp("shell")
    runner = InTheUsersShell(
        checkout.checkout_copy(folder / "checkout"), seed / "xgboost_wine_quality.json", users_shell(folder), seen
    )
    yield runner
    runner.stop()


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while listed
            continue
        children.setdefault(int(fields[1]), []).append(int(status.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def leaked(environment: dict[str, str], shell: dict[str, str]) -> dict[str, str]:
    """The user's AWS settings in `environment`: a variable of theirs with their value (the stack may set the same
    name to its own value: its endpoints, Region and keys)."""
    return {name: value for name, value in environment.items() if name.startswith("AWS_") and shell.get(name) == value}


def test_deploy_status_and_destroy_work_and_nothing_of_the_users_aws_settings_reaches_the_stack(
    make: InTheUsersShell, seen: Path, docker_client: docker.DockerClient
) -> None:
    done = make("deploy")
    assert done.returncode == 0, done.stderr
    assert f"prediction on {make.cloud().thing}: {PREDICTION}" in done.stdout

    status = make("status")
    assert status.returncode == 0, status.stderr
    assert "HEALTHY" in status.stdout, status.stdout

    stack = make.cloud().pid
    processes = [stack, *descendants(stack)]
    environments = {pid: environ_of(pid) for pid in processes}
    components = [pid for pid, env in environments.items() if "SVCUID" in env]
    assert len(components) >= 2, "the publisher's and the subscriber's processes are among the stack's"
    assert {pid: leaked(env, make.shell) for pid, env in environments.items() if leaked(env, make.shell)} == {}
    # The core's own variables are the stand-in's: its Region, not the user's.
    assert {environments[pid]["AWS_REGION"] for pid in components} == {make.cloud().region}

    container = docker_client.containers.get(make.names.subscriber)
    inside = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert leaked(inside, make.shell) == {}

    terraform_runs = [
        dict(item.split("=", 1) for item in path.read_bytes().decode().split("\0") if "=" in item)
        for path in seen.glob("terraform.*")
    ]
    assert terraform_runs, "Terraform ran through the probe"
    assert [leaked(env, make.shell) for env in terraform_runs if leaked(env, make.shell)] == []
    assert all(env.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:") for env in terraform_runs)

    destroyed = make("destroy")
    assert destroyed.returncode == 0, destroyed.stderr
    assert make.root.exists() is False or not (make.root / "stack.json").exists()
