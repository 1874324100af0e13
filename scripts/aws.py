"""boto3 for the pipeline: one retry policy, endpoints from the environment, one clear message per AWS error.

Throttling is retried by botocore itself (adaptive mode, with backoff); what still fails becomes an AwsError
that names the action and says what to do. Endpoints honour AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>,
which is how the local stand-ins (moto, the local greengrassv2 control plane) are reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

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


def session(region: str) -> boto3.Session:
    return boto3.Session(region_name=region)


def client(aws: boto3.Session, service: str) -> Any:
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
