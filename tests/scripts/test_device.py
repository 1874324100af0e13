"""`scripts device`: what a user runs on a real core device to join this stack, from the Terraform outputs.

The flags are the installer's own (developer guide, "Installer arguments"); the `--init-config` keys are the ones
"Install AWS IoT Greengrass Core software with manual resource provisioning" has the user write by hand.
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import tfoutputs
from scripts.cloud import device
from scripts.errors import ToolError
from tests.support.outputs import stack_outputs

CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def outputs() -> tfoutputs.Outputs:
    plain = stack_outputs(
        "eu-west-1", "123456789012", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/edgeml", "bucket",
        "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-fleet",
    )  # fmt: skip
    return dataclasses.replace(
        plain,
        iot_policy_names={"pi-1": "edgeml-pi-1", "pi-2": "edgeml-pi-2"},
        certificate_pems={"pi-2": CERTIFICATE},
    )


def test_the_installer_command_names_every_resource_of_this_stack(tmp_path: Path) -> None:
    """Without --tes-role-name the installer works on GreengrassV2TokenExchangeRole and without --thing-policy-name
    it attaches a wildcard policy (DeviceProvisioningHelper); both are this stack's here."""
    joining = device.joining(outputs(), "pi-1", csr=False, folder=tmp_path)
    words = shlex.split(joining.command)
    flags = dict(zip(words[words.index("-jar") + 2 :: 2], words[words.index("-jar") + 3 :: 2], strict=True))
    assert flags == {
        "--aws-region": "eu-west-1",
        "--thing-name": "pi-1",
        "--thing-group-name": "edgeml-fleet",
        "--thing-policy-name": "edgeml-pi-1",
        "--tes-role-name": "edgeml-token-exchange",
        "--tes-role-alias-name": "edgeml-token-exchange",
        "--component-default-user": "ggc_user:ggc_group",
        "--provision": "true",
        "--setup-system-service": "true",
    }
    assert words[:6] == ["sudo", "-E", "java", "-Droot=/greengrass/v2", "-Dlog.store=FILE", "-jar"]
    assert list(tmp_path.iterdir()) == []  # nothing to copy: the installer provisions


def test_the_installing_identity_may_only_touch_this_stacks_names() -> None:
    """Nothing that could widen what a certificate may do (iot:CreatePolicy: a policy of its own writing;
    iam:PassRole and CreateRoleAlias: another role behind an alias), and every resource with a type is this stack's
    (tests/localcloud/test_device.py runs the installer with this policy and without each statement)."""
    policy = device.joining(outputs(), "pi-1", csr=False, folder=Path("unused")).iam_policy
    assert policy is not None
    actions = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert not actions & {"iot:CreatePolicy", "iot:CreateRoleAlias", "iam:PassRole", "iam:GetRole", "iot:*"}
    resources = {r for statement in policy["Statement"] for r in [statement["Resource"]] for r in
                 ([r] if isinstance(r, str) else r)}  # fmt: skip
    assert resources == {
        "arn:aws:iam::123456789012:policy/edgeml-token-exchangeAccess",
        "arn:aws:iam::aws:policy/edgeml-token-exchangeAccess",
        "arn:aws:iot:eu-west-1:123456789012:policy/edgeml-pi-1",
        "arn:aws:iot:eu-west-1:123456789012:policy/GreengrassTESCertificatePolicyedgeml-token-exchange",
        "arn:aws:iot:eu-west-1:123456789012:thing/pi-1",
        "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-fleet",
        "arn:aws:iot:eu-west-1:123456789012:rolealias/edgeml-token-exchange",
        "arn:aws:iot:eu-west-1:123456789012:cert/*",
        "*",
    }
    unscoped = {a for st in policy["Statement"] if st["Resource"] == "*" for a in st["Action"]}
    assert unscoped == {"iot:CreateKeysAndCertificate", "iot:AttachThingPrincipal", "iot:DescribeEndpoint"}


def test_the_csr_way_writes_an_init_config_with_every_key_the_manual_installation_lists(tmp_path: Path) -> None:
    """manual-installation, "Install the AWS IoT Greengrass Core software": system.{certificateFilePath,
    privateKeyPath, rootCaPath, rootpath, thingName} and the nucleus's componentType, version, awsRegion,
    iotRoleAlias, iotDataEndpoint, iotCredEndpoint."""
    joining = device.joining(outputs(), "pi-2", csr=True, folder=tmp_path)
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["system"] == {
        "certificateFilePath": "/greengrass/v2/device.pem.crt",
        "privateKeyPath": "/greengrass/v2/private.pem.key",
        "rootCaPath": "/greengrass/v2/AmazonRootCA1.pem",
        "rootpath": "/greengrass/v2",
        "thingName": "pi-2",
    }
    nucleus = config["services"]["aws.greengrass.Nucleus"]
    assert nucleus["componentType"] == "NUCLEUS" and nucleus["version"]
    assert nucleus["configuration"] == {
        "awsRegion": "eu-west-1",
        "iotRoleAlias": "edgeml-token-exchange",
        "iotDataEndpoint": "abc-ats.iot.eu-west-1.amazonaws.com",
        "iotCredEndpoint": "abc.credentials.iot.eu-west-1.amazonaws.com",
        "runWithDefault": {"posixUser": "ggc_user:ggc_group"},
    }
    assert (tmp_path / "device.pem.crt").read_text() == CERTIFICATE
    # Every file the config names is one the user is told to put there.
    destinations = set(joining.files.values())
    assert {config["system"][key] for key in ("certificateFilePath", "privateKeyPath", "rootCaPath")} <= destinations
    assert "--init-config /greengrass/v2/config.yaml" in joining.command and "--provision" not in joining.command
    assert joining.iam_policy is None  # the device needs no AWS credentials this way


@pytest.mark.parametrize(
    ("thing", "csr", "names"),
    [("unknown", False, ["core_devices", "pi-1, pi-2", "make apply"]), ("pi-1", True, ["CSR", "core_devices"])],
)
def test_a_thing_the_stack_cannot_let_in_is_refused_with_the_way_to_fix_it(
    thing: str, csr: bool, names: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ToolError) as refused:
        device.joining(outputs(), thing, csr=csr, folder=tmp_path)
    assert all(name in str(refused.value) for name in names), refused.value
    assert not (tmp_path / "config.yaml").exists()


def test_the_cli_takes_thing_and_csr() -> None:
    """The parser alone (the command needs a stack for its outputs): --thing is required."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts", "device", "--help"], capture_output=True, text=True, check=True
    )
    assert "--thing" in done.stdout and "--csr" in done.stdout and "--json" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "scripts", "device"], capture_output=True, text=True)
    assert missing.returncode != 0 and "--thing" in missing.stderr
