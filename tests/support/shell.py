"""A shell that holds the user's own AWS settings, as the people this kit is for have them, and the means to see
what of it reaches a process: the scenarios run `make` from such a shell (tests/scenarios/test_user_journey.py).

The variables are those botocore documents (its session variables and credential providers: the boto3 guide's
"Configuration" and "Credentials" pages) and the Terraform AWS provider documents ("Environment Variables",
"Shared Configuration and Credentials Files", "Assuming an IAM Role Using A Web Identity", "Container credentials").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.make import Make

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
    `terraform` writes the environment it was given into `seen`, then runs the real one."""

    def __init__(self, repo: Path, model: Path, shell: dict[str, str]) -> None:
        super().__init__(repo, model)
        self.seen = repo.parent / "terraform-environments"
        probe = repo.parent / "probe"
        for folder in (self.seen, probe):
            folder.mkdir()
        real = shutil.which("terraform")
        assert real is not None
        (probe / "terraform").write_text(f'#!/bin/sh\nenv -0 > "{self.seen}/terraform.$$"\nexec {real} "$@"\n')
        (probe / "terraform").chmod(0o755)
        self.shell = {**shell, "PATH": f"{probe}:{os.environ['PATH']}"}

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.shell}

    def terraform_environments(self) -> list[dict[str, str]]:
        return [_parsed(path.read_bytes()) for path in self.seen.glob("terraform.*")]


def _parsed(raw: bytes) -> dict[str, str]:
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def environ_of(pid: int) -> dict[str, str]:
    return _parsed(Path(f"/proc/{pid}/environ").read_bytes())


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
