"""What an AWS service may do as a role a customer gave it: an IoT rule's `roleArn`, a delivery stream's `RoleARN`.

The service may use the role only if the role's trust policy lets that service assume it, and then only for what
the role's policies (inline and attached) allow, evaluated by moto's IAMPolicy as for every caller of the stack
(IAM user guide, "Policy evaluation logic": an explicit Deny wins, else some statement must Allow). Condition keys
in the trust policy (`aws:SourceAccount`, `sts:ExternalId`) are the service's to supply and are taken as met: the
services here act for this account only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.models import iam_backends


class NotPermitted(Exception):
    """The role cannot be used for this; the message says why, as the service's error would."""


def trusts(statement: dict[str, Any], service: str) -> bool:
    actions = statement.get("Action", [])
    services = (statement.get("Principal") or {}).get("Service", [])
    return (
        statement.get("Effect") == "Allow"
        and "sts:AssumeRole" in ([actions] if isinstance(actions, str) else actions)
        and service in ([services] if isinstance(services, str) else services)
    )


@dataclass(frozen=True)
class ServiceRoles:
    account: str
    service: str  # e.g. iot.amazonaws.com

    def check(self, role_arn: str, action: str, resource: str) -> None:
        backend = iam_backends[self.account]["aws"]
        try:
            role = backend.get_role_by_arn(role_arn)
        except Exception:  # moto's IAMNotFoundException, or a malformed ARN
            raise NotPermitted(f"the role {role_arn} does not exist") from None
        trust = json.loads(role.assume_role_policy_document)
        if not any(trusts(statement, self.service) for statement in trust.get("Statement", [])):
            raise NotPermitted(f"the trust policy of {role_arn} does not let {self.service} assume it")
        policies: list[Any] = [document for document in role.policies.values()]
        policies += list(role.managed_policies.values())
        results = [IAMPolicy(policy).is_action_permitted(action, resource) for policy in policies]
        if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
            raise NotPermitted(f"{role_arn} is not authorized to perform: {action} on resource: {resource}")
