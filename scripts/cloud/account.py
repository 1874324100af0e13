"""What a command that changes a real account checks first: that the account the credentials reach
(sts:GetCallerIdentity) is the one the user named with CONFIRM, and for a destroy, the stack's own."""

from __future__ import annotations

from dataclasses import replace

import boto3

from scripts import aws
from scripts.cloud import infra
from scripts.errors import ToolError


class OtherAccount(ToolError):
    """The credentials reach another account than the one named: nothing was changed."""


def unattended_if_confirmed(space: infra.Workspace, confirm: str | None) -> infra.Workspace:
    """Terraform asks before it changes the account, unless `confirm` names the account the credentials reach: then
    it goes ahead without asking, as CI needs."""
    if confirm is None:
        return space
    reached = aws.caller_account(boto3.Session(region_name=boto3.Session().region_name or "us-east-1"))
    if reached != confirm:
        raise OtherAccount(
            f"CONFIRM={confirm} is not the account your AWS credentials reach ({reached}): nothing changed"
        )
    return replace(space, unattended=True)


def check_reached(session: boto3.Session, account: str) -> None:
    """The credentials are the stack's account's, or nothing is deleted."""
    reached = aws.caller_account(session)
    if reached != account:
        raise OtherAccount(
            f"your AWS credentials reach account {reached}, not the stack's ({account}): nothing deleted"
        )
