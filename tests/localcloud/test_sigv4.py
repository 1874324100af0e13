"""The Greengrass endpoint's SigV4 check (localcloud.sigv4, sans-IO), held to what AWS does: the Signature Version 4
reference's canonical request ends with the hash of the payload, and only Amazon S3 lets a client sign the words
UNSIGNED-PAYLOAD in its place (S3 API reference, "Authenticating Requests: Using the Authorization Header"); for the
services this endpoint serves, the body is always part of what was signed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud.sigv4 import Guard, Refusal, Signed

KEY, SECRET = "AKIAEXAMPLEKEY", "s3cr3t"
URL = "http://127.0.0.1:4567/greengrass/v2/deployments"
BODY = b'{"targetArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/cores"}'
SWAPPED = b'{"targetArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/everyone"}'


def signed(body: bytes, content_sha256: str | None = None) -> dict[str, str]:
    """The headers botocore signs a POST of `body` with; `content_sha256`: the x-amz-content-sha256 it declares."""
    headers = {"Content-Type": "application/json"}
    if content_sha256 is not None:
        headers["X-Amz-Content-SHA256"] = content_sha256
    request = AWSRequest(method="POST", url=URL, data=body, headers=headers)
    request.context["timestamp"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    SigV4Auth(Credentials(KEY, SECRET), "greengrass", "eu-west-1").add_auth(request)
    return {**dict(request.headers.items()), "Host": "127.0.0.1:4567"}  # as the HTTP client sends it


GUARD = Guard(lambda key: SECRET if key == KEY else None, "eu-west-1")


def test_a_request_signed_over_its_body_passes_and_a_swapped_body_does_not() -> None:
    assert GUARD.verify("POST", "/greengrass/v2/deployments", signed(BODY), BODY) == Signed(KEY)
    refused = GUARD.verify("POST", "/greengrass/v2/deployments", signed(BODY), SWAPPED)
    assert isinstance(refused, Refusal) and refused.code == "InvalidSignatureException"
    declared = signed(BODY, hashlib.sha256(BODY).hexdigest())
    refused = GUARD.verify("POST", "/greengrass/v2/deployments", declared, SWAPPED)
    assert isinstance(refused, Refusal) and refused.code == "XAmzContentSHA256Mismatch"


def test_unsigned_payload_is_not_taken_so_a_body_cannot_be_swapped_under_it() -> None:
    """The attack: sign with x-amz-content-sha256: UNSIGNED-PAYLOAD, then send another body. It is refused, and so
    is the same request with the body it was made for (AWS hashes the body; the signature covers the words)."""
    headers = signed(BODY, "UNSIGNED-PAYLOAD")
    for body in (SWAPPED, BODY):
        refused = GUARD.verify("POST", "/greengrass/v2/deployments", headers, body)
        assert isinstance(refused, Refusal) and refused.status == 403
        assert refused.code == "InvalidSignatureException"
