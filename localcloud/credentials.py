"""The AWS IoT credentials provider: a core device trades its identity for temporary credentials of the role
that its role alias names (the token exchange service's source of credentials, `iotRoleAlias` in the nucleus).

`GET /role-aliases/<alias>/credentials` with the `x-amzn-iot-thingname` header answers
`{"credentials": {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}}`, as the developer guide's
authorize-direct-aws page shows. Locally the thing name stands in for the device's certificate. The role is
assumed as the service assumes it (`credentials.iot.amazonaws.com` must be trusted by it) for the alias's
credential duration, so what the device may do is what that role allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from localcloud import iotpolicy
from localcloud.identities import Caller
from localcloud.restjson import Reply

PATH = re.compile(r"^/role-aliases/(?P<alias>[^/]+)/credentials$")
THING_HEADER = "x-amzn-iot-thingname"


def _answer(status: int, document: dict[str, Any]) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(document).encode())


SERVICE = "credentials.iot.amazonaws.com"
Assume = Callable[[str, str, int], dict[str, Any]]  # role ARN, session name, seconds -> STS Credentials


class CredentialsProvider:
    def __init__(self, iot: Any, assume: Assume) -> None:
        self.iot, self.assume = iot, assume

    def handle(self, method: str, path: str, headers: dict[str, str], caller: Caller) -> Reply | None:
        """The answer to a credentials request, or None when the request is not one. A device's certificate must be
        attached to the thing it names and allowed iot:AssumeRoleWithCertificate on the role alias by its IoT
        policies (developer guide, authorize-direct-aws); the thing name in the request alone proves nothing."""
        match = PATH.match(path)
        if match is None or method != "GET":
            return None
        thing = next((v for k, v in headers.items() if k.lower() == THING_HEADER), "")
        if not thing:
            return _answer(400, {"message": f"the {THING_HEADER} header is required"})
        try:
            alias = self.iot.describe_role_alias(roleAlias=match["alias"])["roleAliasDescription"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return _answer(404, {"message": f"Role alias {match['alias']} does not exist"})
            raise
        if caller.user is not None:  # the provider authenticates over mutual TLS: a certificate, never IAM keys
            return _answer(403, {"message": "the credentials provider takes a device's X.509 certificate, not keys"})
        if not caller.acts_for(thing):
            return _answer(403, {"message": f"the certificate is not attached to thing {thing}"})
        account, region = alias["roleAliasArn"].split(":")[4], alias["roleAliasArn"].split(":")[3]
        assume = iotpolicy.Request("iot:AssumeRoleWithCertificate", alias["roleAliasArn"])
        if not caller.allowed(assume, region, account):
            return _answer(403, {"message": f"Access Denied: no policy allows {assume.action} on {assume.resource}"})
        try:
            assumed = self.assume(alias["roleArn"], thing[:64], int(alias.get("credentialDurationSeconds") or 3600))
        except PermissionError as exc:
            return _answer(403, {"message": str(exc)})
        return _answer(
            200,
            {
                "credentials": {
                    "accessKeyId": assumed["AccessKeyId"],
                    "secretAccessKey": assumed["SecretAccessKey"],
                    "sessionToken": assumed["SessionToken"],
                    "expiration": assumed["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            },
        )
