"""`device`: how a core device joins this stack, from the Terraform outputs: the Greengrass installer's exact command,
the IAM the installing identity needs, and with a CSR, a complete `--init-config` file for `--provision false`.

The installer (developer guide: "Installer arguments", "Minimal IAM policy for installer to provision resources",
"Install AWS IoT Greengrass Core software with manual resource provisioning") is told this stack's own names:
the thing's own IoT policy (`--thing-policy-name`; without it the installer attaches a wildcard policy of its own),
the token exchange role (`--tes-role-name`; without it the installer works on the default
GreengrassV2TokenExchangeRole, which a fresh account does not have, and fails after making a thing and a
certificate) and its role alias, the thing group, and ggc_user:ggc_group for the components.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts import tfoutputs
from scripts.errors import ToolError

ROOT = "/greengrass/v2"
INSTALLER = "./GreengrassInstaller/lib/Greengrass.jar"  # where the developer guide unzips the installer
COMPONENT_USER = "ggc_user:ggc_group"
NUCLEUS_VERSION = "2.14.0"  # the version the --init-config file names; the one the installer zip holds
ROOT_CA = "https://www.amazontrust.com/repository/AmazonRootCA1.pem"
# The IoT policy the installer attaches for the role alias (DeviceProvisioningHelper.setupIoTRoleForTes), which
# terraform/modules/token-exchange holds.
TES_POLICY_PREFIX = "GreengrassTESCertificatePolicy"


class DeviceError(ToolError):
    pass


@dataclass(frozen=True)
class Plan:
    """One thing's way in."""

    thing: str
    region: str
    account: str
    thing_group: str
    thing_policy: str
    role_name: str
    role_alias: str
    data_endpoint: str
    credential_endpoint: str

    def installer_args(self) -> list[str]:
        """The installer's flags for `--provision true`, in the order the developer guide gives them."""
        return [
            "--aws-region", self.region,
            "--thing-name", self.thing,
            "--thing-group-name", self.thing_group,
            "--thing-policy-name", self.thing_policy,
            "--tes-role-name", self.role_name,
            "--tes-role-alias-name", self.role_alias,
            "--component-default-user", COMPONENT_USER,
            "--provision", "true",
            "--setup-system-service", "true",
        ]  # fmt: skip

    def command(self, args: list[str]) -> str:
        java = ["sudo", "-E", "java", f"-Droot={ROOT}", "-Dlog.store=FILE", "-jar", INSTALLER, *args]
        return shlex.join(java)

    def installer_policy(self) -> dict[str, Any]:
        """What the identity that runs `--provision true` needs for this thing, and no more (the calls are
        DeviceProvisioningHelper's). Terraform made the role, its alias, the thing's policy and the installer's
        `GreengrassTESCertificatePolicy<alias>`: the installer finds them (GetPolicy, DescribeRoleAlias) and
        attaches them to the certificate it creates, so it needs neither iot:CreatePolicy (a policy it wrote could
        allow iot:* on *) nor CreateRoleAlias, GetRole or PassRole. Its CreatePolicy of `<role>Access` answers
        EntityAlreadyExists (Terraform holds the name) and adds nothing. Names are scoped where the Service
        Authorization Reference gives the action a resource type; AttachPolicy's is the new certificate, unknown
        until it exists."""
        iam = f"arn:aws:iam::{self.account}"
        iot = f"arn:aws:iot:{self.region}:{self.account}"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "FindTheTokenExchangeRolesPolicy",
                    "Effect": "Allow",
                    "Action": ["iam:GetPolicy", "iam:CreatePolicy"],
                    "Resource": [
                        f"{iam}:policy/{self.role_name}Access",
                        f"arn:aws:iam::aws:policy/{self.role_name}Access",
                    ],
                },
                {
                    "Sid": "FindTheStacksIotPolicies",
                    "Effect": "Allow",
                    "Action": ["iot:GetPolicy"],
                    "Resource": [
                        f"{iot}:policy/{self.thing_policy}",
                        f"{iot}:policy/{TES_POLICY_PREFIX}{self.role_alias}",
                    ],
                },
                {
                    "Sid": "MakeThisThingInThisGroup",
                    "Effect": "Allow",
                    "Action": ["iot:CreateThing", "iot:CreateThingGroup", "iot:AddThingToThingGroup"],
                    "Resource": [f"{iot}:thing/{self.thing}", f"{iot}:thinggroup/{self.thing_group}"],
                },
                {
                    "Sid": "FindTheRoleAlias",
                    "Effect": "Allow",
                    "Action": ["iot:DescribeRoleAlias"],
                    "Resource": [f"{iot}:rolealias/{self.role_alias}"],
                },
                {
                    "Sid": "AttachThePoliciesToTheNewCertificate",
                    "Effect": "Allow",
                    "Action": ["iot:AttachPolicy"],
                    "Resource": [f"{iot}:cert/*"],
                },
                {
                    "Sid": "IssueTheCertificate",  # no resource type: `*` is the only resource these take
                    "Effect": "Allow",
                    "Action": ["iot:CreateKeysAndCertificate", "iot:AttachThingPrincipal", "iot:DescribeEndpoint"],
                    "Resource": "*",
                },
            ],
        }

    def init_config(self) -> dict[str, Any]:
        """The partial configuration the installer completes (`--init-config`, manual provisioning)."""
        return {
            "system": {
                "certificateFilePath": f"{ROOT}/device.pem.crt",
                "privateKeyPath": f"{ROOT}/private.pem.key",
                "rootCaPath": f"{ROOT}/AmazonRootCA1.pem",
                "rootpath": ROOT,
                "thingName": self.thing,
            },
            "services": {
                "aws.greengrass.Nucleus": {
                    "componentType": "NUCLEUS",
                    "version": NUCLEUS_VERSION,
                    "configuration": {
                        "awsRegion": self.region,
                        "iotRoleAlias": self.role_alias,
                        "iotDataEndpoint": self.data_endpoint,
                        "iotCredEndpoint": self.credential_endpoint,
                        "runWithDefault": {"posixUser": COMPONENT_USER},
                    },
                }
            },
        }


def plan(outputs: tfoutputs.Outputs, thing: str) -> Plan:
    """The thing must be one of Terraform's `core_devices`: that gives it its own IoT policy before it joins."""
    policy = outputs.iot_policy_names.get(thing)
    if policy is None:
        listed = ", ".join(sorted(outputs.iot_policy_names)) or "none"
        raise DeviceError(
            f"{thing} is not one of the stack's core devices (core_devices: {listed}): add it to Terraform's "
            f"core_devices (-var 'core_devices={{\"{thing}\"={{}}}}') and `make apply`, so that it gets an IoT "
            "policy of its own before it joins"
        )
    return Plan(
        thing,
        outputs.region,
        outputs.account_id,
        outputs.thing_group_name,
        policy,
        outputs.token_exchange_role_name,
        outputs.role_alias,
        outputs.iot_data_endpoint,
        outputs.iot_credential_endpoint,
    )


@dataclass(frozen=True)
class Joining:
    """What `make device` prints: the command, the IAM it needs, and with a CSR the files it wrote."""

    plan: Plan
    command: str
    installer_args: list[str]
    iam_policy: dict[str, Any] | None  # None: the CSR way needs no AWS credentials on the device
    files: dict[str, str]  # name -> where it was written, and where on the device it goes

    def record(self) -> dict[str, Any]:
        return {
            "thing": self.plan.thing,
            "command": self.command,
            "installer_args": self.installer_args,
            "iam_policy": self.iam_policy,
            "files": self.files,
            "preflight": "sh device/preflight.sh",
        }


def joining(outputs: tfoutputs.Outputs, thing: str, csr: bool, folder: Path) -> Joining:
    """The way in for `thing`: the installer provisions it (needs AWS credentials on the device), or, with `csr`,
    the certificate Terraform issued from the device's CSR and a complete `--init-config` file in `folder`."""
    chosen = plan(outputs, thing)
    if not csr:
        args = chosen.installer_args()
        return Joining(chosen, chosen.command(args), args, chosen.installer_policy(), {})
    certificate = outputs.certificate_pems.get(thing)
    if not certificate:
        raise DeviceError(
            f"no certificate was issued for {thing}: give its CSR to Terraform "
            f'(core_devices = {{"{thing}" = {{csr = file("{thing}.csr")}}}}) and `make apply`; the private key '
            "stays on the device"
        )
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(chosen.init_config(), sort_keys=False))
    cert = folder / "device.pem.crt"
    cert.write_text(certificate)
    args = [
        "--init-config", f"{ROOT}/config.yaml",
        "--component-default-user", COMPONENT_USER,
        "--setup-system-service", "true",
    ]  # fmt: skip
    files = {
        str(config): f"{ROOT}/config.yaml",
        str(cert): f"{ROOT}/device.pem.crt",
        "(the private key that signed the CSR)": f"{ROOT}/private.pem.key",
        ROOT_CA: f"{ROOT}/AmazonRootCA1.pem",
    }
    return Joining(chosen, chosen.command(args), args, None, files)
