"""The AWS IoT rules engine of the local cloud: the topic rules created through the IoT API (as Terraform creates
them) run on the messages that reach the local broker, and on those the hollow devices send.

From the AWS IoT developer guide ("Rules for AWS IoT", "AWS IoT rule actions", "Error action"):
- a rule whose SQL matches a message runs each of its actions on the SQL's output; a disabled rule runs nothing;
- each action acts as the rule's role (`roleArn`), which IoT must be trusted to assume and which must allow the
  action's own API call on its resource (localcloud.service_role);
- `firehose`: PutRecord of the output followed by `separator` into `deliveryStreamName` (localcloud.firehose
  buffers it); `s3`: PutObject of the output at `key` (substitution templates evaluated); `republish`: the
  output published on `topic`;
- when an action fails, the rule's `errorAction` runs once on a message that names the rule, the topic, the client,
  the original payload (base64) and each failure (`failedAction`, `failedResource`, `errorMessage`).
`clientid()` is the publisher's MQTT client id where the local cloud knows it (the hollow devices); a broker
subscriber is not told who published, so for the broker's messages it is Undefined. A rule whose SQL the local
cloud cannot evaluate (localcloud.iot_sql) is logged once and skipped, never refused: AWS accepted it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.firehose.models import firehose_backends
from moto.iot.models import iot_backends
from moto.s3.models import s3_backends

from localcloud import iot_sql
from localcloud.service_role import NotPermitted, ServiceRoles

log = logging.getLogger("localcloud.rules")
Publish = Callable[[str, bytes, int], None]


class ActionFailed(Exception):
    def __init__(self, action: str, resource: str, message: str) -> None:
        super().__init__(message)
        self.failure = {"failedAction": action, "failedResource": resource, "errorMessage": message}


class RulesEngine:
    def __init__(
        self, account: str, region: str, clock: Callable[[], float] = time.time, publish: Publish | None = None
    ) -> None:
        self.account, self.region, self.clock, self.publish = account, region, clock, publish
        self.roles = ServiceRoles(account, "iot.amazonaws.com")
        self._parsed: dict[tuple[str, str], iot_sql.Statement | None] = {}
        self._lock = threading.Lock()

    def _rules(self) -> list[tuple[Any, iot_sql.Statement]]:
        found = []
        for rule in list(iot_backends[self.account][self.region].rules.values()):
            if rule.rule_disabled:
                continue
            key = (rule.rule_name, rule.sql)
            with self._lock:
                if key not in self._parsed:
                    try:
                        self._parsed[key] = iot_sql.parse(rule.sql)
                    except iot_sql.SqlError as exc:
                        log.error("rule %s is not evaluated by the local cloud: %s", rule.rule_name, exc)
                        self._parsed[key] = None
                statement = self._parsed[key]
            if statement is not None:
                found.append((rule, statement))
        return found

    def filters(self) -> set[str]:
        """The topic filters the enabled rules listen on."""
        return {statement.topic_filter for _, statement in self._rules()}

    def receive(self, topic: str, payload: bytes, client_id: str = "") -> int:
        """Runs every rule the message triggers; how many did."""
        message = iot_sql.Message(topic, payload, client_id, int(self.clock() * 1000))
        triggered = 0
        for rule, statement in self._rules():
            output = statement.evaluate(message)
            if output is None:
                continue
            triggered += 1
            data = json.dumps(output, separators=(",", ":")).encode()
            failures = []
            for action in rule.actions:
                try:
                    self._act(action, data, message)
                except ActionFailed as exc:
                    log.warning("rule %s: %s failed: %s", rule.rule_name, exc.failure["failedAction"], exc)
                    failures.append(exc.failure)
            if failures and rule.error_action:
                self._error(rule, message, failures)
        return triggered

    def _error(self, rule: Any, message: iot_sql.Message, failures: list[dict[str, str]]) -> None:
        report = {
            "ruleName": rule.rule_name,
            "topic": message.topic,
            "cloudwatchTraceId": str(uuid.uuid4()),
            "clientId": message.client_id,
            "base64OriginalPayload": base64.b64encode(message.payload).decode(),
            "failures": failures,
        }
        try:
            self._act(rule.error_action, json.dumps(report).encode(), message)
        except ActionFailed as exc:
            log.error("rule %s: its error action failed too: %s", rule.rule_name, exc)

    def _act(self, action: dict[str, Any], data: bytes, message: iot_sql.Message) -> None:
        (kind, spec), *_ = action.items()
        if kind == "firehose":
            self._firehose(spec, data)
        elif kind == "s3":
            self._s3(spec, data, message)
        elif kind == "republish":
            self._republish(spec, data, message)
        else:
            raise ActionFailed(kind, "", f"the local cloud does not run {kind} actions")

    def _allowed(self, kind: str, spec: dict[str, Any], action: str, resource: str) -> None:
        try:
            self.roles.check(str(spec.get("roleArn")), action, resource)
        except NotPermitted as exc:
            raise ActionFailed(kind, resource, str(exc)) from None

    def _firehose(self, spec: dict[str, Any], data: bytes) -> None:
        name = str(spec.get("deliveryStreamName"))
        arn = f"arn:aws:firehose:{self.region}:{self.account}:deliverystream/{name}"
        self._allowed("FirehoseAction", spec, "firehose:PutRecord", arn)
        separator = str(spec.get("separator") or "").encode()
        try:
            firehose_backends[self.account][self.region].put_record(name, {"Data": data + separator})
        except Exception as exc:  # moto's ResourceNotFoundException: the stream is gone
            raise ActionFailed("FirehoseAction", arn, str(exc)) from None

    def _s3(self, spec: dict[str, Any], data: bytes, message: iot_sql.Message) -> None:
        bucket = str(spec.get("bucketName"))
        key = iot_sql.substitute(str(spec.get("key")), message)
        self._allowed("S3Action", spec, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")
        try:
            s3_backends[self.account]["aws"].put_object(bucket, key, data)
        except Exception as exc:  # moto's MissingBucket
            raise ActionFailed("S3Action", f"{bucket}/{key}", str(exc)) from None

    def _republish(self, spec: dict[str, Any], data: bytes, message: iot_sql.Message) -> None:
        topic = iot_sql.substitute(str(spec.get("topic")), message)
        arn = f"arn:aws:iot:{self.region}:{self.account}:topic/{topic}"
        self._allowed("RepublishAction", spec, "iot:Publish", arn)
        if self.publish is None:
            raise ActionFailed("RepublishAction", arn, "no broker to republish to")
        self.publish(topic, data, int(spec.get("qos") or 0))
