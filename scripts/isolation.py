"""What of the user's shell reaches whatever talks to the local cloud: none of their AWS settings. The one place that
decides it, for the local target's Terraform, its boto3 sessions and every process of the stack it starts.

A shell of the people this kit is for holds AWS settings: an SSO or aws-vault session token, a profile, a config
file with a credential_process, a CA bundle, a role to assume. Mixed with the stand-in's keys they break a local run
(Terraform sends the stand-in's keys with the user's token; botocore looks for a profile this machine lacks), and
they must never point anything of a local run at the user's account. Every variable the AWS SDKs and the Terraform
AWS provider read is named `AWS_...` (botocore's session variables and credential providers, the provider's
"Environment Variables" and "Shared Configuration and Credentials Files" sections), so every `AWS_...` variable of
the user's is dropped and the stand-in's own (endpoints, Region, keys: localcloud.info.StackInfo.environment) are
set. The stand-in is on loopback: a proxy the shell names is told to leave it alone.

`TARGET=aws` uses none of this: its Terraform and boto3 resolve the user's settings as the SDKs and Terraform do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import botocore.configprovider
import botocore.session

PREFIX = "AWS_"
LOOPBACK = ("127.0.0.1", "localhost")


def users_aws_setting(name: str) -> bool:
    return name.startswith(PREFIX)


def environment(stand_in: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (this process's environment) without any AWS setting of the user's, with the stand-in's variables."""
    kept = {
        name: value for name, value in (os.environ if base is None else base).items() if not users_aws_setting(name)
    }
    for name in ("NO_PROXY", "no_proxy"):
        listed = [entry for entry in kept.get(name, "").split(",") if entry]
        if name in kept or any(proxy in kept for proxy in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")):
            kept[name] = ",".join(dict.fromkeys([*listed, *LOOPBACK]))
    return {**kept, **stand_in}


def botocore_session() -> botocore.session.Session:
    """A botocore session that reads no setting from this process's environment nor from the user's AWS files (no
    profile, no config or credentials file, no CA bundle, no FIPS or dual-stack endpoints, no extra model path):
    what it is given is all it uses."""
    unread = {
        name: (config_name, None, os.devnull if name in ("config_file", "credentials_file") else default, convert)
        for name, (
            config_name,
            _,
            default,
            convert,
        ) in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    return botocore.session.Session(session_vars=unread)
