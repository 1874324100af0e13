"""The Greengrass IPC operations, behind any transport that can send frames to a connected component.

Check order and error texts follow the nucleus (PubSubIPCEventStreamAgent, MqttProxyIPCAgent,
ConfigStoreIPCEventStreamAgent, LifecycleIPCEventStreamAgent): see ../shared/docs/greengrass-ipc.md §7-9.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from localgg import shapes, topics
from localgg.authorization import MQTT_PROXY, PUBSUB, Authorizer, Mode, NotAuthorized
from localgg.config import ConfigStore, KeyNotFound, StaleUpdate, UpdateRefused
from localgg.updates import NoticeError, UpdateNotices

log = logging.getLogger("localgg.ipc")

NS = "aws.greengrass#"
OPERATIONS = frozenset(
    NS + name
    for name in (
        "AuthorizeClientDeviceAction",
        "CancelLocalDeployment",
        "CreateDebugPassword",
        "CreateLocalDeployment",
        "DeferComponentUpdate",
        "DeleteThingShadow",
        "GetClientDeviceAuthToken",
        "GetComponentDetails",
        "GetConfiguration",
        "GetLocalDeploymentStatus",
        "GetSecretValue",
        "GetThingShadow",
        "ListComponents",
        "ListLocalDeployments",
        "ListNamedShadowsForThing",
        "PauseComponent",
        "PublishToIoTCore",
        "PublishToTopic",
        "PutComponentMetric",
        "RestartComponent",
        "ResumeComponent",
        "SendConfigurationValidityReport",
        "StopComponent",
        "SubscribeToCertificateUpdates",
        "SubscribeToComponentUpdates",
        "SubscribeToConfigurationUpdate",
        "SubscribeToIoTCore",
        "SubscribeToIoTCoreConnectionStatus",
        "SubscribeToTopic",
        "SubscribeToValidateConfigurationUpdates",
        "UpdateConfiguration",
        "UpdateState",
        "UpdateThingShadow",
        "ValidateAuthorizationToken",
        "VerifyClientDeviceIdentity",
    )
)
RECEIVE_ALL = "RECEIVE_ALL_MESSAGES"
RECEIVE_OTHERS = "RECEIVE_MESSAGES_FROM_OTHERS"


class Peer(Protocol):
    """One authenticated connection, as the transport exposes it to the services."""

    component: str

    def send(self, stream_id: int, model_type: str, payload: bytes, terminate: bool) -> None: ...

    def send_error(self, stream_id: int, model_type: str | None, payload: bytes, content_type: str) -> None: ...


class IpcError(Exception):
    """A modeled error: the client raises `model.<shape>` with `message`."""

    def __init__(self, shape: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.shape = shape
        self.fields = fields

    def payload(self) -> bytes:
        return json.dumps(
            {
                "message": str(self),
                **self.fields,
                "_service": NS + "GreengrassCoreIPC",
                "_message": str(self),
                "_errorCode": self.shape,
            }
        ).encode()


class Unmodeled(Exception):
    """A failure the nucleus reports without a model type (the client sees StreamClosedError)."""


def unauthorized(message: str) -> IpcError:
    return IpcError("UnauthorizedError", message)


def invalid(message: str) -> IpcError:
    return IpcError("InvalidArgumentsError", message)


class IotCoreBridge(Protocol):
    def publish(self, topic: str, qos: int, payload: bytes, retain: bool) -> None: ...

    def subscribe(
        self, topic_filter: str, qos: int, deliver: Callable[[str, bytes, bool], None]
    ) -> Callable[[], None]: ...


@dataclass(eq=False)
class Subscription:
    peer: Peer
    stream_id: int
    topic_filter: str
    component: str
    skip_own: bool
    cancel: Callable[[], None] = field(default=lambda: None)


class PubSub:
    def __init__(self) -> None:
        self._exact: dict[tuple[str, ...], list[Subscription]] = {}
        self._wildcard: list[Subscription] = []

    def add(self, subscription: Subscription) -> None:
        if topics.is_wildcard(subscription.topic_filter):
            self._wildcard.append(subscription)
        else:
            self._exact.setdefault(topics.levels(subscription.topic_filter), []).append(subscription)

    def remove(self, subscription: Subscription) -> None:
        if subscription in self._wildcard:
            self._wildcard.remove(subscription)
            return
        bucket = self._exact.get(topics.levels(subscription.topic_filter), [])
        if subscription in bucket:
            bucket.remove(subscription)

    def matching(self, topic: str) -> list[Subscription]:
        found = list(self._exact.get(topics.levels(topic), ()))
        found += [s for s in self._wildcard if topics.matches(s.topic_filter, topic)]
        return found


@lru_cache(maxsize=1024)
def _context(topic: str) -> str:
    """The `context` of a delivered message, the same for every message on a topic."""
    return json.dumps({"topic": topic})


@contextlib.contextmanager
def _as_ipc_error() -> Iterator[None]:
    """A deployment's refusal (updates.NoticeError) as the modeled IPC error it names."""
    try:
        yield
    except NoticeError as exc:
        raise IpcError(exc.shape, str(exc)) from None


class IpcServices:
    def __init__(
        self,
        config: ConfigStore,
        authorizer: Authorizer,
        on_state: Callable[[str, str], None] = lambda component, state: None,
        iot_core: IotCoreBridge | None = None,
    ) -> None:
        self.config = config
        self.authorizer = authorizer
        self.on_state = on_state
        self.iot_core = iot_core
        self.pubsub = PubSub()
        self.updates = UpdateNotices()
        self._streams: dict[tuple[int, int], Subscription] = {}  # (id(peer), stream) -> subscription
        self._handlers: dict[str, Callable[[Peer, int, dict[str, Any]], dict[str, Any] | None]] = {
            NS + "PublishToTopic": self._publish_to_topic,
            NS + "SubscribeToTopic": self._subscribe_to_topic,
            NS + "PublishToIoTCore": self._publish_to_iot_core,
            NS + "SubscribeToIoTCore": self._subscribe_to_iot_core,
            NS + "GetConfiguration": self._get_configuration,
            NS + "UpdateConfiguration": self._update_configuration,
            NS + "SubscribeToConfigurationUpdate": self._subscribe_to_configuration_update,
            NS + "UpdateState": self._update_state,
            NS + "SubscribeToComponentUpdates": self._subscribe_to_component_updates,
            NS + "DeferComponentUpdate": self._defer_component_update,
            NS + "SubscribeToValidateConfigurationUpdates": self._subscribe_to_validate_configuration_updates,
            NS + "SendConfigurationValidityReport": self._send_configuration_validity_report,
        }

    # Dispatch ----------------------------------------------------------------------------------------------

    def call(self, peer: Peer, stream_id: int, operation: str, payload: bytes) -> None:
        """Run one operation and answer on its stream. A streaming operation's subscription starts after its
        response has been queued, so no event can overtake the response."""
        if operation not in OPERATIONS:
            body = {"error": "Unsupported Operation", "message": f"{operation} is an unsupported operation."}
            peer.send_error(stream_id, None, json.dumps(body).encode(), "application/json")
            return
        handler = self._handlers.get(operation)
        try:
            request = shapes.decode(operation.removeprefix(NS), payload)
            if handler is None:
                raise IpcError("ServiceError", f"Operation {operation} is not supported by Greengrass")
            response = handler(peer, stream_id, request)
        except IpcError as exc:
            log.info("%s stream %d %s -> %s: %s", peer.component, stream_id, operation, exc.shape, exc)
            peer.send_error(stream_id, NS + exc.shape, exc.payload(), "application/json")
            return
        except (Unmodeled, shapes.Malformed) as exc:
            log.info("%s stream %d %s -> InternalServerError (%s)", peer.component, stream_id, operation, exc)
            peer.send_error(stream_id, None, b"InternalServerError", "text/plain")
            return
        except Exception as exc:  # a bug here must cost one call, not the connection (the nucleus: ServiceError)
            log.exception("%s stream %d %s failed", peer.component, stream_id, operation)
            peer.send_error(
                stream_id, NS + "ServiceError", IpcError("ServiceError", str(exc)).payload(), "application/json"
            )
            return
        streaming = (id(peer), stream_id) in self._streams
        payload = json.dumps(response).encode() if response else b"{}"
        peer.send(stream_id, f"{operation}Response", payload, terminate=not streaming)

    def stream_closed(self, peer: Peer, stream_id: int) -> None:
        subscription = self._streams.pop((id(peer), stream_id), None)
        if subscription is not None:
            self.pubsub.remove(subscription)
            subscription.cancel()

    def peer_closed(self, peer: Peer, stream_ids: set[int]) -> None:
        for stream_id in stream_ids:
            self.stream_closed(peer, stream_id)

    def _register(self, subscription: Subscription) -> None:
        self._streams[(id(subscription.peer), subscription.stream_id)] = subscription

    # Local pub/sub -----------------------------------------------------------------------------------------

    def _publish_to_topic(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        topic, message = request["topic"], request["publishMessage"]
        binary, structured = (message or {}).get("binaryMessage"), (message or {}).get("jsonMessage")
        if structured is not None and structured["message"] is None:
            raise Unmodeled("jsonMessage has no message")
        self._authorize_pubsub(peer, "PublishToTopic", topic)
        if message is None or (binary is None and structured is None):
            raise IpcError("ServiceError", "publishMessage is required")
        if topic is None:
            raise invalid("Publish topic must not be null")
        if topics.has_wildcard_character(topic):
            raise invalid("Publish topic must not contain a wildcard.")
        if not topics.levels(topic):
            raise IpcError("ServiceError", f"Publish to topic {topic} failed")
        context = _context(topic)
        if binary is not None:
            event = f'{{"binaryMessage":{{"message":"{binary["message"] or ""}","context":{context}}}}}'
        else:
            body = json.dumps(structured["message"] if structured else None)
            event = f'{{"jsonMessage":{{"message":{body},"context":{context}}}}}'
        self._deliver(peer.component, topic, event.encode())
        return None

    def _deliver(self, publisher: str, topic: str, event: bytes) -> None:
        for subscription in self.pubsub.matching(topic):
            if subscription.skip_own and subscription.component == publisher:
                continue
            subscription.peer.send(subscription.stream_id, NS + "SubscriptionResponseMessage", event, False)

    def _authorize_pubsub(self, peer: Peer, operation: str, topic: str | None) -> None:
        """The nucleus's AuthorizationHandler.isAuthorized, whose AuthorizationException (an empty topic among its
        causes) the pub/sub agent answers with UnauthorizedError and its message."""
        try:
            allowed = self.authorizer.is_authorized(PUBSUB, peer.component, NS + operation, topic)
        except NotAuthorized as exc:
            raise unauthorized(str(exc)) from None
        if not allowed:
            raise unauthorized(
                f"Principal {peer.component} is not authorized to perform {PUBSUB}:{NS}{operation} on resource {topic}"
            )

    def _subscribe_to_topic(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        topic, mode = request["topic"], request["receiveMode"]
        self._authorize_pubsub(peer, "SubscribeToTopic", topic)
        if not topic:
            raise invalid("Subscribe topic must not be empty")
        if mode not in (RECEIVE_ALL, RECEIVE_OTHERS):
            # The nucleus's surprising default: a wildcard filter skips the subscriber's own messages.
            mode = RECEIVE_OTHERS if topics.is_wildcard(topic) else RECEIVE_ALL
        subscription = Subscription(peer, stream_id, topic, peer.component, mode == RECEIVE_OTHERS)
        self.pubsub.add(subscription)
        self._register(subscription)
        return None

    # AWS IoT Core through the MQTT bridge ------------------------------------------------------------------

    def _qos(self, request: dict[str, Any]) -> int:
        qos = request["qos"]
        if qos is None:
            raise invalid("QoS is required")
        if str(qos) not in ("0", "1"):
            raise invalid(f"Invalid QoS value: {qos}")
        return int(qos)

    def _authorize_mqtt(self, peer: Peer, operation: str, topic: str) -> None:
        try:
            allowed = self.authorizer.is_authorized(MQTT_PROXY, peer.component, NS + operation, topic, Mode.MQTT_STYLE)
        except NotAuthorized:
            allowed = False
        if not allowed:
            raise unauthorized("Not Authorized")

    def _bridge(self) -> IotCoreBridge:
        if self.iot_core is None:
            raise IpcError("ServiceError", "This core is not connected to AWS IoT Core (no MQTT broker configured)")
        return self.iot_core

    def _publish_to_iot_core(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        topic = request["topicName"]
        if topic is None:
            raise invalid("Topic is required")
        self._authorize_mqtt(peer, "PublishToIoTCore", topic)
        if request["payload"] is None:
            raise invalid("Payload is required")
        qos = self._qos(request)
        payload = base64.b64decode(request["payload"])  # base64 already (shapes)
        try:
            self._bridge().publish(topic, qos, payload, bool(request["retain"]))
        except OSError as exc:  # the spooler refused it (localgg.mqtt.BridgeError): the caller hears why
            log.warning("PublishToIoTCore on %s not spooled: %s", topic, exc)
            raise IpcError("ServiceError", str(exc)) from None
        return None

    def _subscribe_to_iot_core(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        topic = request["topicName"]
        if topic is None:
            raise invalid("Topic is required")
        self._authorize_mqtt(peer, "SubscribeToIoTCore", topic)
        qos = self._qos(request)
        subscription = Subscription(peer, stream_id, topic, peer.component, False)

        def deliver(actual_topic: str, payload: bytes, retain: bool) -> None:
            message = {"topicName": actual_topic, "payload": base64.b64encode(payload).decode(), "retain": retain}
            peer.send(stream_id, NS + "IoTCoreMessage", json.dumps({"message": message}).encode(), False)

        try:
            subscription.cancel = self._bridge().subscribe(topic, qos, deliver)
        except OSError as exc:
            raise IpcError("ServiceError", f"Subscribe to topic {topic} failed with error {exc}") from None
        self._register(subscription)
        return None

    # Configuration and lifecycle ---------------------------------------------------------------------------

    def _get_configuration(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> dict[str, Any]:
        component = request["componentName"] or peer.component
        try:
            value = self.config.get(component, request["keyPath"] or [])
        except KeyNotFound as exc:
            raise IpcError("ResourceNotFoundError", str(exc)) from None
        return {"componentName": component, "value": value}

    def _update_configuration(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        component = request["componentName"] or peer.component
        if component != peer.component:
            raise invalid("Cannot update configuration of other components")
        value = request["valueToMerge"]
        if not isinstance(value, dict):
            raise invalid("valueToMerge must be a map")
        try:
            self.config.update(component, request["keyPath"] or [], value, request["timestamp"])
        except UpdateRefused as exc:
            raise invalid(str(exc)) from None
        except StaleUpdate as exc:
            raise IpcError("FailedUpdateConditionCheckError", str(exc)) from None
        return None

    def _subscribe_to_configuration_update(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        component = request["componentName"] or peer.component
        watched = request["keyPath"] or []
        if not self.config.has(component):
            raise IpcError("ResourceNotFoundError", "Key not found", resourceType="Component", resourceName=component)
        if watched:
            try:
                self.config.get(component, watched)  # the nucleus subscribes to an existing node only
            except KeyNotFound as exc:
                raise IpcError("ResourceNotFoundError", str(exc)) from None

        def changed(who: str, path: list[str]) -> None:
            overlap = min(len(path), len(watched))
            if who == component and path[:overlap] == watched[:overlap]:
                event = {"configurationUpdateEvent": {"componentName": who, "keyPath": path}}
                peer.send(stream_id, NS + "ConfigurationUpdateEvents", json.dumps(event).encode(), False)

        subscription = Subscription(peer, stream_id, "", peer.component, False, self.config.watch(changed))
        self._register(subscription)
        return None

    def _update_state(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        state = request["state"]
        if state not in ("RUNNING", "ERRORED"):
            raise invalid(f"Invalid state: {state}")
        self.on_state(peer.component, state)
        return None

    # A deployment's questions to the components (updates.py) ------------------------------------------------

    def _subscribe_to_component_updates(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        cancel = self.updates.subscribe_to_updates(peer, stream_id)
        self._register(Subscription(peer, stream_id, "", peer.component, False, cancel))
        return None

    def _defer_component_update(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        with _as_ipc_error():
            self.updates.defer(peer.component, request["deploymentId"], request["recheckAfterMs"])
        return None

    def _subscribe_to_validate_configuration_updates(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        cancel = self.updates.subscribe_to_validation(peer, stream_id)
        self._register(Subscription(peer, stream_id, "", peer.component, False, cancel))
        return None

    def _send_configuration_validity_report(self, peer: Peer, stream_id: int, request: dict[str, Any]) -> None:
        with _as_ipc_error():
            self.updates.report(peer.component, request["configurationValidityReport"])
        return None
