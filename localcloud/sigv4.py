"""Who may call the local Greengrass endpoint: AWS Signature Version 4, checked as AWS checks it, against the keys
the stack knows (its owner's, kept in its 0600 state file, and its device's). Every AWS client signs this way
(boto3, the AWS CLI, GDK, Terraform), so they all work unchanged, and nobody without a key (another user of the
machine, a web page) gets past it. Plus two guards a loopback HTTP service needs: the Host header must name
loopback (a web page cannot rebind a name of its own to 127.0.0.1), and bodies are capped; all of this and the
part of the signature that needs no body is checked before a body is read.

Sans-IO: `Guard.check` takes the request's parts and answers None (go on) or the error to send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
SKEW = timedelta(minutes=15)  # as AWS: an older (or newer) signature is refused, so a captured request expires
MISMATCH = "The request signature we calculated does not match the signature you provided."
MAX_BODY = 4 << 20  # a component recipe is at most 16 KB and a deployment far less: 4 MB is generous


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str  # the error code AWS answers with (x-amzn-ErrorType)
    message: str


@dataclass(frozen=True)
class Signed:
    """A request whose signature holds: by the key `key_id`."""

    key_id: str


@dataclass(frozen=True)
class Guard:
    secret_of: Callable[[str], str | None]  # access key id -> its secret, None for a key nobody here holds
    region: str  # the credential scope's region must be the stack's
    services: frozenset[str] = frozenset({"greengrass", "iot-jobs-data", "iot"})  # signing names this endpoint serves

    def check(self, headers: Mapping[str, str], length: int) -> Refusal | None:
        """Before the body is read: the Host, the size, and all of the signature that needs no body (who signed, for
        which region and service, when). A caller without a key of this stack costs no read of its body."""
        lower = {k.lower(): v for k, v in headers.items()}
        host = lower.get("host", "")
        if host.rsplit(":", 1)[0] not in LOOPBACK:
            return Refusal(403, "AccessDeniedException", f"Host {host!r} is not this machine's loopback")
        if length > MAX_BODY:
            return Refusal(413, "ValidationException", f"request body of {length} bytes exceeds {MAX_BODY}")
        signer = self._signer(lower)
        return signer if isinstance(signer, Refusal) else None

    def _signer(self, lower: Mapping[str, str]) -> Refusal | tuple[re.Match[str], str]:
        """The Authorization header's parts and the key's secret, or why the request cannot be this stack's."""
        found = AUTHORIZATION.match(lower.get("authorization", ""))
        if found is None:
            return Refusal(403, "MissingAuthenticationTokenException", "the request is not signed with SigV4")
        secret = self.secret_of(found["key"])
        if secret is None:
            return Refusal(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if found["region"] != self.region or found["service"] not in self.services:
            return Refusal(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region and service, not {found['region']}/{found['service']}",
            )
        signed = found["signed"].split(";")
        if "host" not in signed or any(name not in lower for name in signed) or "x-amz-date" not in lower:
            return Refusal(403, "InvalidSignatureException", "the signature must cover Host and X-Amz-Date")
        try:
            signed_at = datetime.strptime(lower["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return Refusal(403, "InvalidSignatureException", "X-Amz-Date is not a SigV4 timestamp")
        if abs(datetime.now(UTC) - signed_at) > SKEW:
            return Refusal(403, "InvalidSignatureException", "Signature expired: X-Amz-Date is more than 15 min away")
        return found, secret

    def verify(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Refusal | Signed:
        """The signature: made with a key this endpoint knows, for this region and one of its services, over this
        very request, body included (a signed x-amz-content-sha256 must be the body's, as AWS checks it)."""
        lower = {k.lower(): v for k, v in headers.items()}
        signer = self._signer(lower)
        if isinstance(signer, Refusal):
            return signer
        found, secret = signer
        signed = found["signed"].split(";")
        claimed = lower.get("x-amz-content-sha256")
        if claimed == "UNSIGNED-PAYLOAD":
            # Only S3 takes an unsigned payload; for these services the canonical request hashes the body itself,
            # so a signature made over the words UNSIGNED-PAYLOAD never matches (and a swapped body is not let in).
            return Refusal(403, "InvalidSignatureException", MISMATCH)
        if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
            return Refusal(
                400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match the body"
            )
        request = AWSRequest(
            method=method, url=f"http://{lower['host']}{target}", headers={n: lower[n] for n in signed}, data=body
        )
        request.context["timestamp"] = lower["x-amz-date"]
        auth = SigV4Auth(Credentials(found["key"], secret), found["service"], found["region"])
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if not hmac.compare_digest(expected, found["signature"]):
            return Refusal(403, "InvalidSignatureException", MISMATCH)
        return Signed(found["key"])
