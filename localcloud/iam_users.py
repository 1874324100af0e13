"""The IAM users of the local cloud's moto, as its Greengrass endpoint sees them: the secret of an access key, and
whether the user's identity policies (inline, attached, and its groups') allow an action. The evaluation is moto's
own, the one its IAM enforcement applies to S3, ECR, IAM and IoT, so a policy means the same on every endpoint of
the stack. As with moto's JSON services, the resource is `*`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.iam.access_control import CreateAccessKeyFailure, IAMPolicy, IAMUserAccessKey, PermissionResult


@dataclass(frozen=True)
class User:
    arn: str
    secret: str
    policies: tuple[Any, ...]  # as moto's IAM backend holds them, read when the request came

    def permits(self, action: str, resource: str = "*") -> bool:
        return allowed(self.policies, action, resource)


@dataclass(frozen=True)
class Signer:
    """Whoever signed a request (moto's IAMUserAccessKey or AssumedRoleAccessKey), its policies read at each check:
    what it was given lasts (an ECR token 12 hours), and its policies can change in that time."""

    key: Any

    @property
    def arn(self) -> str:
        return str(self.key.arn)

    def permits(self, action: str, resource: str = "*") -> bool:
        return allowed(tuple(self.key.collect_policies()), action, resource)


def allowed(policies: tuple[Any, ...], action: str, resource: str) -> bool:
    """IAM's rule: an explicit Deny wins, else some statement must Allow."""
    results = [IAMPolicy(policy).is_action_permitted(action, resource) for policy in policies]
    return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results


def lookup(account: str, partition: str = "aws") -> Callable[[str], User | None]:
    """The user an access key id belongs to, or None."""

    def find(key_id: str) -> User | None:
        try:
            key = IAMUserAccessKey(account_id=account, partition=partition, access_key_id=key_id, headers={})
        except CreateAccessKeyFailure:
            return None
        return User(key.arn, key.create_credentials().secret_key, tuple(key.collect_policies()))

    return find
