"""AWS IoT Core's policy evaluation, for the MQTT actions of a device (moto keeps IoT policies but never applies them).

The rules, from the AWS IoT Core developer guide (iot-policies, iot-policy-actions, iot-action-resources,
thing-policy-variables, pub-sub-policy):
- A request is an action on a resource ARN: `iot:Connect` on `client/<client id>`, `iot:Publish` and
  `iot:Receive` on `topic/<topic>`, `iot:Subscribe` on `topicfilter/<filter>`; the MQTT wildcards `+` and `#`
  in a filter are plain characters to the policy, so only a resource that names them (or a `*`) covers them.
- In `Action` and `Resource`, `*` matches any run of characters (`/` included) and `?` exactly one.
- `${...}` policy variables take their values from the connection. The thing variables
  (`iot:Connection.Thing.*`) exist only when the client id is the name of a thing attached to the certificate;
  a resource whose variable has no value matches nothing.
- An explicit Deny anywhere wins over every Allow; with no Allow, the request is denied.
Statements with a `Condition` are refused rather than half-understood.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VARIABLE = re.compile(r"\$\{([^}]*)\}")
THING_NAME = "iot:Connection.Thing.ThingName"


class PolicyError(ValueError):
    """A policy document this evaluator cannot read; the message says where."""


@dataclass(frozen=True)
class Request:
    action: str  # iot:Connect, iot:Publish, iot:Subscribe, iot:Receive
    resource: str  # the full ARN


@dataclass(frozen=True)
class Connection:
    """Who asks: the MQTT client id, and the thing its certificate is attached to (if any)."""

    region: str
    account: str
    client_id: str
    attached_thing: str | None = None

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:{kind}/{name}"

    def connect(self, client_id: str | None = None) -> Request:
        return Request("iot:Connect", self.arn("client", client_id or self.client_id))

    def publish(self, topic: str) -> Request:
        return Request("iot:Publish", self.arn("topic", topic))

    def receive(self, topic: str) -> Request:
        return Request("iot:Receive", self.arn("topic", topic))

    def subscribe(self, topic_filter: str) -> Request:
        return Request("iot:Subscribe", self.arn("topicfilter", topic_filter))

    def variables(self) -> dict[str, str]:
        values = {"iot:ClientId": self.client_id}
        # The thing variables come from the client id naming an attached thing, never from the certificate alone.
        if self.attached_thing is not None and self.attached_thing == self.client_id:
            values[THING_NAME] = self.attached_thing
            values["iot:Connection.Thing.IsAttached"] = "true"
        return values


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def covers(self, request: Request, variables: Mapping[str, str]) -> bool:
        return any(_matches(_pattern(a.lower(), {}), request.action.lower()) for a in self.actions) and any(
            _matches(_pattern(resource, variables), request.resource) for resource in self.resources
        )


def statements(document: Mapping[str, Any] | str) -> list[Statement]:
    """The statements of a policy document (a dict or its JSON text)."""
    try:
        parsed = json.loads(document) if isinstance(document, str) else document
        raw = parsed["Statement"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyError(f"not an IoT policy document: {exc}") from None
    found = []
    for index, item in enumerate([raw] if isinstance(raw, dict) else raw):
        where = f"statement {item.get('Sid', index)}" if isinstance(item, dict) else f"statement {index}"
        if not isinstance(item, dict) or item.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be Allow or Deny")
        if unknown := set(item) - {"Sid", "Effect", "Action", "Resource"}:
            raise PolicyError(f"{where}: {', '.join(sorted(unknown))} not supported by this evaluator")
        actions, resources = _strings(item.get("Action"), where), _strings(item.get("Resource"), where)
        found.append(Statement(item["Effect"], actions, resources))
    return found


def _strings(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{where}: Action and Resource must be a string or a non-empty list of strings")
    return tuple(values)


def allowed(policies: Iterable[list[Statement]], request: Request, connection: Connection) -> bool:
    """Whether the policies attached to the connection's certificate allow the request."""
    variables = connection.variables()
    every = [statement for policy in policies for statement in policy]
    if any(s.effect == "Deny" and s.covers(request, variables) for s in every):
        return False
    return any(s.effect == "Allow" and s.covers(request, variables) for s in every)


def _pattern(text: str, variables: Mapping[str, str]) -> str | None:
    """A regular expression for a policy's Action or Resource; None when one of its variables has no value.
    A variable's value is literal text: a client id's `*` is no wildcard."""
    parts: list[str] = []
    at = 0
    for match in VARIABLE.finditer(text):
        parts.append(wildcards(text[at : match.start()]))
        if match.group(1) not in variables:
            return None
        parts.append(re.escape(variables[match.group(1)]))
        at = match.end()
    parts.append(wildcards(text[at:]))
    return "".join(parts)


def wildcards(text: str) -> str:
    """A regular expression for a policy pattern without variables: `*` any run of characters, `?` one."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


def _matches(pattern: str | None, value: str) -> bool:
    return pattern is not None and re.fullmatch(pattern, value, re.DOTALL) is not None
