"""boto3 for the pipeline: one retry policy, endpoints and keys handed over explicitly, one clear message per AWS
error.

Throttling is retried by botocore itself (adaptive mode, with backoff); what still fails becomes an AwsError
that names the action and says what to do. A session for a real account takes the normal credential chain and
endpoints; one for a local stand-in (moto, the local greengrassv2 control plane) is given the same variables boto3
would read (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, the keys) as a mapping, never through this process's
environment, so that nothing else in the process is pointed at the stand-in by accident.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from scripts import isolation
from scripts.errors import ToolError

MAX_ATTEMPTS = 8
RETRIES = Config(retries={"max_attempts": MAX_ATTEMPTS, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)
_DENIED = (
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
)
THROTTLED = ("Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown")
_MISSING = (
    "ResourceNotFoundException",
    "NoSuchBucket",
    "NoSuchKey",
    "RepositoryNotFoundException",
    "NoSuchEntity",
    "NotFoundException",
)


class AwsError(ToolError):
    """An AWS call failed for good; the message says which action, why, and what to do."""


class _Pointed(boto3.Session):  # type: ignore[misc]  # boto3 has no types here
    """A session whose clients go where the given variables say, and use nothing else: no AWS setting of this
    process's environment or of the user's files (scripts/isolation.py)."""

    def __init__(self, region: str, endpoints: Mapping[str, str], keys: Mapping[str, str]) -> None:
        super().__init__(region_name=region, botocore_session=isolation.botocore_session(), **keys)
        self._endpoints = dict(endpoints)

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self._endpoints.get(service_name, self._endpoints.get(""))
        return super().client(service_name, *args, **kwargs)


def session(region: str, variables: Mapping[str, str] | None = None) -> boto3.Session:
    """A session in `region`. `variables`: the endpoints and keys of a stand-in, as boto3's environment variables
    name them (AWS_ENDPOINT_URL_GREENGRASSV2 for one service's); None: the normal chain of a real account."""
    if variables is None:
        return boto3.Session(region_name=region)
    prefix = "AWS_ENDPOINT_URL_"
    endpoints = {
        name[len(prefix) :].lower().replace("_", "-"): url for name, url in variables.items() if name.startswith(prefix)
    }
    if "AWS_ENDPOINT_URL" in variables:
        endpoints[""] = variables["AWS_ENDPOINT_URL"]
    keys = {
        argument: variables[name]
        for argument, name in (
            ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
            ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("aws_session_token", "AWS_SESSION_TOKEN"),
        )
        if name in variables
    }
    return _Pointed(region, endpoints, keys)


def client(aws: boto3.Session, service: str) -> Any:
    """A client; credentials the user's settings name but cannot give (a profile this machine lacks, a
    credential_process that fails) are one AwsError, not a traceback (botocore resolves them here)."""
    with calling(f"an AWS {service} client"):
        return aws.client(service, config=RETRIES)


def error_code(error: ClientError) -> str:
    """The service's error code of a failed call ("" when the response has none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def explain(action: str, error: Exception) -> AwsError:
    if isinstance(error, NoCredentialsError):
        return AwsError(
            f"{action}: no AWS credentials found. Set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY), or run without TARGET=aws to use the local cloud."
        )
    if isinstance(error, (CredentialRetrievalError, ProfileNotFound)):
        return AwsError(
            f"{action}: the AWS credentials your settings name cannot be had ({error}). Check AWS_PROFILE, "
            "AWS_CONFIG_FILE and the profile's credential_process or SSO session (`aws sso login`)."
        )
    if isinstance(error, NoRegionError):
        return AwsError(f"{action}: no AWS Region: set AWS_REGION or the Terraform variable region.")
    if isinstance(error, EndpointConnectionError):
        return AwsError(
            f"{action}: cannot reach {error.kwargs.get('endpoint_url')}: check the Region, the network, "
            "or AWS_ENDPOINT_URL."
        )
    if isinstance(error, ClientError):
        code = error_code(error) or "?"
        message = error.response.get("Error", {}).get("Message", "")
        if code in _DENIED:
            return AwsError(
                f"{action}: access denied ({code}): {message}. The credentials in use lack this "
                "permission, or belong to another account."
            )
        if code in THROTTLED:
            return AwsError(
                f"{action}: still throttled after {MAX_ATTEMPTS} attempts with backoff ({code}); "
                "try again later or raise the service quota."
            )
        if code in _MISSING:
            return AwsError(
                f"{action}: not found ({code}): {message}. Wrong Region or account, or the "
                "infrastructure is not applied yet (terraform apply)."
            )
        return AwsError(f"{action}: {code}: {message}")
    return AwsError(f"{action}: {type(error).__name__}: {error}")


@contextmanager
def calling(action: str) -> Iterator[None]:
    """`with calling("upload the artifact"): ...` turns any AWS failure into one AwsError naming the action."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise explain(action, exc) from exc


def caller_account(aws: boto3.Session) -> str:
    """The account the session's credentials belong to (sts:GetCallerIdentity, which no policy can deny)."""
    sts = client(aws, "sts")
    with calling("find the account of your AWS credentials (sts:GetCallerIdentity)"):
        return str(sts.get_caller_identity()["Account"])
