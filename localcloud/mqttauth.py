"""Who may use the local cloud's MQTT broker, and which topics: the stack itself, and each device by its certificate.

AWS IoT Core lets a client in by its X.509 certificate and then checks every publish and subscribe against the IoT
policies attached to it (localcloud.iotpolicy evaluates those exactly). mosquitto knows passwords and topic-filter
ACLs instead, so a device's account is its certificate id with the secret only its key gives
(localcloud.identities), and its ACL the topics its policies' Allow statements name, for its own thing:
- `iot:Publish` allows `write`, `iot:Receive` and `iot:Subscribe` allow `read`, on `topic/...` and
  `topicfilter/...` resources of this Region and account;
- policy variables take the values of a connection whose client id is the device's thing, as a core connects;
- an IoT `*` stands for any characters, `/` included: the level it is in and all below become `#`, so the ACL
  allows at least what the policy does (Deny statements are not carried over: the broker is the fence around the
  stack, not a second policy engine; what a device may do in detail is localcloud.iotpolicy's to say).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from localcloud import iotpolicy
from localcloud.broker import Account
from localcloud.identities import Certificate

CLOUD_USER = "localcloud"
ACCESS = {"iot:publish": "write", "iot:receive": "read", "iot:subscribe": "read"}
KINDS = {"write": ("topic",), "read": ("topic", "topicfilter")}


def cloud_account(password: str | None = None) -> Account:
    """The stack's own client (it reads every device's fleet status): every topic, `$aws/...` included (an ACL's
    `#` does not reach topics that start with `$`)."""
    return Account(CLOUD_USER, password or secrets.token_hex(32), (("readwrite", "#"), ("readwrite", "$aws/#")))


def device_account(certificate: Certificate, region: str, account: str) -> Account:
    thing = certificate.things[0] if certificate.things else None
    connection = iotpolicy.Connection(region, account, thing or certificate.certificate_id, thing)
    variables = connection.variables()
    topics: set[tuple[str, str]] = set()
    for policy in certificate.policies:
        for statement in policy:
            if statement.effect != "Allow":
                continue
            for access in _accesses(statement.actions):
                for resource in statement.resources:
                    topics.update((access, f) for f in _filters(resource, access, region, account, variables))
    return Account(certificate.certificate_id, certificate.secret, tuple(sorted(topics)))


def accounts(cloud: Account, certificates: Iterable[Certificate], region: str, account: str) -> list[Account]:
    return [cloud, *(device_account(c, region, account) for c in certificates)]


def _accesses(actions: Iterable[str]) -> set[str]:
    return {
        access
        for action in actions
        for name, access in ACCESS.items()
        if re.fullmatch(iotpolicy.wildcards(action.lower()), name) is not None
    }


def _filters(resource: str, access: str, region: str, account: str, variables: dict[str, str]) -> list[str]:
    text = _substituted(resource, variables)
    if text is None:
        return []
    if text == "*":
        return ["#", "$aws/#"]
    for kind in KINDS[access]:
        head, separator, topic = text.partition(f":{kind}/")
        if separator and re.fullmatch(iotpolicy.wildcards(head), f"arn:aws:iot:{region}:{account}") is not None:
            return [_acl_filter(topic)]
    return []


def _substituted(resource: str, variables: dict[str, str]) -> str | None:
    """The resource with its policy variables filled in; None when one has no value (it then matches nothing)."""
    missing = [name for name in iotpolicy.VARIABLE.findall(resource) if name not in variables]
    if missing:
        return None
    return iotpolicy.VARIABLE.sub(lambda match: variables[match.group(1)], resource)


def _acl_filter(topic: str) -> str:
    levels = topic.split("/")
    wild = next((at for at, level in enumerate(levels) if "*" in level or "?" in level), None)
    if wild is None:
        return topic
    return "/".join([*levels[:wild], "#"])
