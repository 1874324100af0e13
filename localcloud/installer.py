"""The Greengrass installer's provisioning (`--provision true`), for a core device of the local cloud: the same calls
in the same order, with the installing identity's credentials, driven by the same flags `make device` prints.

From aws-greengrass-nucleus's easysetup (GreengrassSetup.provision, DeviceProvisioningHelper):
1. the thing policy (`--thing-policy-name`) is reused when it exists, else created with the installer's wildcard
   document; CreateKeysAndCertificate (active); AttachPolicy to the certificate; CreateThing; AttachThingPrincipal;
   DescribeEndpoint for `iot:Data-ATS` and `iot:CredentialProvider`;
2. the thing group (`--thing-group-name`): CreateThingGroup, an existing one reused; AddThingToThingGroup;
3. the role alias (`--tes-role-alias-name`) reused when it exists (else the role `--tes-role-name` is found or made,
   and the alias made for it); the IoT policy `GreengrassTESCertificatePolicy<alias>` allowing
   iot:AssumeRoleWithCertificate on it, reused or made, attached to the certificate;
4. the managed policy `<role>Access` created and attached to the role, unless that name exists (EntityAlreadyExists
   leaves it as it is: this stack's Terraform holds the name).
Then the device's identity is written where its core finds it: the certificate, its private key (0600) and what
the nucleus's configuration would hold (thing, region, role alias, endpoints, the component default user).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from localcloud.info import IDENTITY as IDENTITY

WILDCARD_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive"], "Resource": "*"}
    ],
}
DEFAULT_ROLE_POLICY = {  # the installer's default for <role>Access
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
                "s3:GetBucketLocation",
            ],
            "Resource": "*",
        }
    ],
}
TES_POLICY_PREFIX = "GreengrassTESCertificatePolicy"


class InstallerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Identity:
    """What the installer leaves on the device, besides the key and certificate files."""

    thing: str
    certificate_id: str
    certificate_arn: str
    region: str
    role_alias: str
    data_endpoint: str
    credential_endpoint: str
    component_user: str

    def save(self, folder: Path, private_key: str, certificate: str) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, text, mode in (
            ("private.pem.key", private_key, 0o600),
            ("device.pem.crt", certificate, 0o644),
            ("identity.json", json.dumps(asdict(self), indent=2), 0o600),
        ):
            partial = folder / f".{name}.partial"
            partial.unlink(missing_ok=True)
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w") as out:
                out.write(text)
            partial.replace(folder / name)  # the identity file last: its presence means the rest is there

    @classmethod
    def load(cls, folder: Path) -> tuple[Identity, str] | None:
        """The identity and the private key, once the installer has written them."""
        try:
            found = cls(**json.loads((folder / "identity.json").read_text()))
            return found, (folder / "private.pem.key").read_text()
        except (OSError, ValueError, TypeError):
            return None


def parser() -> argparse.ArgumentParser:
    """The installer's flags this project uses (developer guide, "Installer arguments")."""
    flags = argparse.ArgumentParser(prog="installer", add_help=False)
    flags.add_argument("--aws-region", "-ar", required=True)
    flags.add_argument("--thing-name", "-tn", required=True)
    flags.add_argument("--thing-group-name", "-tgn")
    flags.add_argument("--thing-policy-name", "-tpn", default="GreengrassV2IoTThingPolicy")
    flags.add_argument("--tes-role-name", "-trn", default="GreengrassV2TokenExchangeRole")
    flags.add_argument("--tes-role-alias-name", "-tra", default="GreengrassCoreTokenExchangeRoleAlias")
    flags.add_argument("--component-default-user", "-u", default="ggc_user:ggc_group")
    flags.add_argument("--provision", "-p", default="false")
    flags.add_argument("--setup-system-service", "-ss", default="false")
    return flags


def _exists(call: Any, code: str = "ResourceNotFoundException") -> bool:
    try:
        call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] == code:
            return False
        raise
    return True


def _policy_document(document: dict[str, Any]) -> str:
    return json.dumps(document)


def provision(iot: Any, iam: Any, args: argparse.Namespace, say: Any = print) -> tuple[Identity, str, str]:
    """The installer's calls; the identity, the private key and the certificate PEM."""
    if str(args.provision).lower() != "true":
        raise InstallerError("only --provision true is emulated; the --init-config path needs no AWS calls")
    thing, policy = args.thing_name, args.thing_policy_name
    if _exists(lambda: iot.get_policy(policyName=policy)):
        say(f'Found IoT policy "{policy}", reusing it')
    else:
        say(f'Creating new IoT policy "{policy}"')
        iot.create_policy(policyName=policy, policyDocument=_policy_document(WILDCARD_POLICY))
    keys = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_policy(policyName=policy, target=keys["certificateArn"])
    # CreateThing of an existing thing (same attributes) succeeds on AWS and changes nothing; moto refuses it. The
    # installer makes no other call here, so its identity needs no iot:DescribeThing.
    _exists(lambda: iot.create_thing(thingName=thing), "ResourceAlreadyExistsException")
    iot.attach_thing_principal(thingName=thing, principal=keys["certificateArn"])
    data = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    credentials = iot.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"]
    if args.thing_group_name:
        if not _exists(
            lambda: iot.create_thing_group(thingGroupName=args.thing_group_name), "ResourceAlreadyExistsException"
        ):
            say(f'IoT Thing Group "{args.thing_group_name}" already existed, reusing it')
        iot.add_thing_to_thing_group(thingName=thing, thingGroupName=args.thing_group_name)
    alias = args.tes_role_alias_name
    try:
        alias_arn = iot.describe_role_alias(roleAlias=alias)["roleAliasDescription"]["roleAliasArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        role_arn = iam.get_role(RoleName=args.tes_role_name)["Role"]["Arn"]
        alias_arn = iot.create_role_alias(roleAlias=alias, roleArn=role_arn)["roleAliasArn"]
    tes_policy = TES_POLICY_PREFIX + alias
    if not _exists(lambda: iot.get_policy(policyName=tes_policy)):
        document = {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate", "Resource": alias_arn},
        }
        iot.create_policy(policyName=tes_policy, policyDocument=_policy_document(document))
    iot.attach_policy(policyName=tes_policy, target=keys["certificateArn"])
    access = f"{args.tes_role_name}Access"
    try:
        created = iam.create_policy(PolicyName=access, PolicyDocument=_policy_document(DEFAULT_ROLE_POLICY))
        iam.attach_role_policy(RoleName=args.tes_role_name, PolicyArn=created["Policy"]["Arn"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        say(f'IAM policy named "{access}" already exists. Please attach it to the IAM role if not already')
    identity = Identity(
        thing,
        keys["certificateId"],
        keys["certificateArn"],
        args.aws_region,
        alias,
        data,
        credentials,
        args.component_default_user,
    )
    return identity, keys["keyPair"]["PrivateKey"], keys["certificatePem"]
