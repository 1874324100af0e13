"""Authorization from each component's `accessControl`, with the nucleus's matching rules.

Policies are only additive. A request is allowed when a policy of its destination grants (principal, op),
(principal, *), (*, op) or (*, *) with a resource that matches. Local pub/sub matches resources STANDARD
(only `*` is a wildcard); the MQTT proxy matches MQTT_STYLE (`+` as a whole level, `#` as the last level).
`${*}`, `${$}` and `${?}` escape those characters; an unescaped `?` or an empty resource is invalid and skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

log = logging.getLogger("localgg.authorization")

PUBSUB = "aws.greengrass.ipc.pubsub"
MQTT_PROXY = "aws.greengrass.ipc.mqttproxy"
REGISTERED_OPERATIONS = {
    PUBSUB: {"aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic", "*"},
    MQTT_PROXY: {"aws.greengrass#PublishToIoTCore", "aws.greengrass#SubscribeToIoTCore", "*"},
    "aws.greengrass.SecretManager": {"aws.greengrass#GetSecretValue", "*"},
    "aws.greengrass.ShadowManager": {
        "aws.greengrass#GetThingShadow",
        "aws.greengrass#UpdateThingShadow",
        "aws.greengrass#DeleteThingShadow",
        "aws.greengrass#ListNamedShadowsForThing",
        "*",
    },
    "aws.greengrass.ipc.lifecycle": {"aws.greengrass#PauseComponent", "aws.greengrass#ResumeComponent", "*"},
    "aws.greengrass.ipc.componentmetric": {"aws.greengrass#PutComponentMetric", "*"},
}


class Mode(Enum):
    STANDARD = "standard"
    MQTT_STYLE = "mqtt"


class NotAuthorized(Exception):
    """Carries the message the caller sees in UnauthorizedError."""


class InvalidResource(ValueError):
    pass


@lru_cache(maxsize=4096)
def compile_resource(resource: str, mode: Mode) -> re.Pattern[str]:
    if not resource:
        raise InvalidResource("an empty resource")
    if mode is Mode.MQTT_STYLE and resource == "#":
        return re.compile(r".*", re.DOTALL)
    levels = resource.split("/")
    pattern = ""
    for index, level in enumerate(levels):
        if mode is Mode.MQTT_STYLE and level == "#" and index == len(levels) - 1 and index > 0:
            pattern += "(?:/.*)?"  # `a/#` matches `a`, `a/` and `a/anything`
            break
        if index > 0:
            pattern += "/"
        pattern += "[^/]*" if mode is Mode.MQTT_STYLE and level == "+" else _standard_level(level)
    return re.compile(pattern, re.DOTALL)


def _standard_level(level: str) -> str:
    out, at = [], 0
    while at < len(level):
        char = level[at]
        if level.startswith("${", at):
            end = level.find("}", at)
            escaped = level[at + 2 : end] if end != -1 else ""
            if escaped not in ("*", "$", "?"):
                raise InvalidResource(f"invalid escape in {level!r}")
            out.append(re.escape(escaped))
            at = end + 1
        elif char == "*":
            out.append(".*")
            at += 1
        elif char == "?":
            raise InvalidResource(f"unescaped '?' in {level!r}")
        else:
            out.append(re.escape(char))
            at += 1
    return "".join(out)


@dataclass(frozen=True)
class Policy:
    principal: str
    operations: frozenset[str]
    resources: tuple[str, ...]


def _field(policy: dict[str, Any], name: str) -> Any:
    for key, value in policy.items():
        if key.lower() == name:
            return value
    return None


def parse_policies(component: str, access_control: Any) -> dict[str, list[Policy]]:
    """A component's accessControl (a map, or a JSON string of one) as policies per destination."""
    if isinstance(access_control, str):
        try:
            access_control = json.loads(access_control)
        except json.JSONDecodeError:
            log.error("%s: accessControl is not valid JSON; no policies loaded", component)
            return {}
    policies: dict[str, list[Policy]] = {}
    if not isinstance(access_control, dict):
        return policies
    for destination, entries in access_control.items():
        if not isinstance(entries, dict):
            continue
        for policy_id, policy in entries.items():
            if not policy_id or not isinstance(policy, dict):
                log.error("%s: policy %r under %s is invalid; skipped", component, policy_id, destination)
                continue
            operations = frozenset(str(o) for o in _field(policy, "operations") or [])
            unknown = operations - REGISTERED_OPERATIONS.get(destination, operations)
            if unknown:
                log.error(
                    "%s: policy %s names operations %s not registered for %s",
                    component,
                    policy_id,
                    sorted(unknown),
                    destination,
                )
            resources = tuple(str(r) for r in _field(policy, "resources") or [])
            policies.setdefault(destination, []).append(Policy(component, operations, resources))
    return policies


DECISIONS_KEPT = 4096


class Authorizer:
    """Decisions are remembered until the policies change: a component publishes to the same topics again and
    again, and the check is on every message's path."""

    def __init__(self) -> None:
        self._policies: dict[str, dict[str, list[Policy]]] = {}  # component -> destination -> policies
        self._decisions: dict[tuple[str, str, str, str | None, Mode], bool] = {}

    def load(self, component: str, access_control: Any) -> None:
        self._policies[component] = parse_policies(component, access_control)
        self._decisions.clear()

    def forget(self, component: str) -> None:
        self._policies.pop(component, None)
        self._decisions.clear()

    def _candidates(self, destination: str, principal: str, operation: str) -> Iterable[Policy]:
        # A policy grants rights only to the component that declares it.
        for policy in self._policies.get(principal, {}).get(destination, []):
            if operation in policy.operations or "*" in policy.operations:
                yield policy

    def is_authorized(
        self, destination: str, principal: str, operation: str, resource: str | None, mode: Mode = Mode.STANDARD
    ) -> bool:
        """Raises NotAuthorized("Resource cannot be empty") for "", as the nucleus does."""
        key = (destination, principal, operation, resource, mode)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(destination, principal, operation, resource, mode)
            if len(self._decisions) >= DECISIONS_KEPT:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _decide(self, destination: str, principal: str, operation: str, resource: str | None, mode: Mode) -> bool:
        if operation not in REGISTERED_OPERATIONS.get(destination, set()):
            return False
        if resource == "":
            raise NotAuthorized("Resource cannot be empty")
        for policy in self._candidates(destination, principal, operation):
            if resource is None:
                return True
            for pattern in policy.resources:
                try:
                    if compile_resource(pattern, mode).fullmatch(resource):
                        return True
                except InvalidResource as exc:
                    log.warning("%s: resource %r skipped: %s", policy.principal, pattern, exc)
        return False
