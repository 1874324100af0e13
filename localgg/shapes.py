"""The IPC requests as the nucleus reads them, before any handler sees them: sans-IO, no sockets.

The nucleus deserializes each request's JSON into the operation's request class with Gson
(EventStreamRPCServiceModel.fromJson), and a payload that does not fit the class is a DeserializationException,
which OperationContinuationHandler answers with the unmodeled "InternalServerError" (greengrass-ipc.md 7.2). Gson
is lenient where its type adapters are: a string field takes a number or a boolean as its text, a number field a
numeric string, a boolean field any string (Boolean.parseBoolean); an object, an array or a blob must be one.
Unknown fields are ignored and a missing or null one is absent. A union (PublishMessage) holds one member at most.

`decode(operation, payload)` returns the request with every field of its shape present (None when absent) and of
its type, so a handler never meets a value of the wrong type; a request that Gson would refuse raises Malformed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Reader = Callable[[Any, str], Any]


class Malformed(ValueError):
    """The request does not deserialize into its operation's request class; the message says where."""


_LONG = (-(2**63), 2**63 - 1)
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def is_base64(text: Any) -> bool:
    """Standard base64 with its padding, as strict decoding wants it; checked, not decoded, since a message is
    passed on as it came (three times faster than decoding it)."""
    if not isinstance(text, str) or len(text) % 4:
        return False
    core = text.rstrip("=")
    if len(text) - len(core) > 2 or not core.isascii():
        return False
    return not core.encode().translate(None, _BASE64_ALPHABET)


def _scalar_text(value: Any) -> str | None:
    """A JSON primitive as Gson reads it into a String (JsonReader.nextString, Boolean.toString)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return None


def string(value: Any, where: str) -> str:
    text = _scalar_text(value)
    if text is None:
        raise Malformed(f"{where}: expected a string but was {_kind(value)}")
    return text


def long(value: Any, where: str) -> int:
    """A Java long: a JSON number or numeric string with no fractional part, within 64 bits (JsonReader.nextLong)."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise Malformed(f"{where}: expected a long but was {value!r}") from None
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise Malformed(f"{where}: expected a long but was {_kind(value)}")
    if isinstance(number, float):
        if not math.isfinite(number) or number != int(number):
            raise Malformed(f"{where}: expected a long but was {value!r}")
        number = int(number)
    if not _LONG[0] <= number <= _LONG[1]:
        raise Malformed(f"{where}: {value!r} does not fit in a long")
    return int(number)


def boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):  # Boolean.parseBoolean: "true" in any case, anything else is false
        return value.lower() == "true"
    raise Malformed(f"{where}: expected a boolean but was {_kind(value)}")


def blob(value: Any, where: str) -> str:
    """A base64 blob, kept as its text (the component's bytes are passed on as they came)."""
    text = _scalar_text(value)
    if text is None or not is_base64(text):
        raise Malformed(f"{where}: not base64")
    return text


def timestamp(value: Any, where: str) -> float:
    """Seconds since the epoch (InstantSerializerDeserializer: JsonElement.getAsDouble)."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise Malformed(f"{where}: expected a timestamp but was {value!r}") from None
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise Malformed(f"{where}: expected a timestamp but was {_kind(value)}")
    return float(number)


def document(value: Any, where: str) -> dict[str, Any]:
    """Map<String, Object>: any JSON object."""
    if not isinstance(value, dict):
        raise Malformed(f"{where}: expected an object but was {_kind(value)}")
    return value


def list_of(item: Reader) -> Reader:
    def read(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise Malformed(f"{where}: expected an array but was {_kind(value)}")
        return [None if element is None else item(element, f"{where}[{at}]") for at, element in enumerate(value)]

    return read


@dataclass(frozen=True)
class Structure:
    """A model class: its fields by JSON name; `union` when at most one of them may be set."""

    fields: Mapping[str, Reader]
    union: bool = False

    def __call__(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Malformed(f"{where}: expected an object but was {_kind(value)}")
        read = {
            name: None if value.get(name) is None else field(value[name], f"{where}.{name}")
            for name, field in self.fields.items()
        }
        if self.union and sum(member is not None for member in read.values()) > 1:
            raise Malformed(f"{where}: more than one member of the union is set")
        return read


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


_CONTEXT = Structure({"topic": string})
PUBLISH_MESSAGE = Structure(
    {
        "jsonMessage": Structure({"message": document, "context": _CONTEXT}),
        "binaryMessage": Structure({"message": blob, "context": _CONTEXT}),
    },
    union=True,
)
_USER_PROPERTY = Structure({"key": string, "value": string})
_EMPTY = Structure({})

# The request class of each operation localgg handles (awsiot.greengrasscoreipc.model, the same Smithy model as
# the nucleus's Java classes), by operation name without the namespace.
REQUESTS: dict[str, Structure] = {
    "PublishToTopic": Structure({"topic": string, "publishMessage": PUBLISH_MESSAGE}),
    "SubscribeToTopic": Structure({"topic": string, "receiveMode": string}),
    "PublishToIoTCore": Structure(
        {
            "topicName": string,
            "qos": string,
            "payload": blob,
            "retain": boolean,
            "userProperties": list_of(_USER_PROPERTY),
            "messageExpiryIntervalSeconds": long,
            "correlationData": blob,
            "responseTopic": string,
            "payloadFormat": string,
            "contentType": string,
        }
    ),
    "SubscribeToIoTCore": Structure({"topicName": string, "qos": string}),
    "GetConfiguration": Structure({"componentName": string, "keyPath": list_of(string)}),
    "UpdateConfiguration": Structure(
        {"componentName": string, "keyPath": list_of(string), "timestamp": timestamp, "valueToMerge": document}
    ),
    "SubscribeToConfigurationUpdate": Structure({"componentName": string, "keyPath": list_of(string)}),
    "UpdateState": Structure({"state": string}),
    "SubscribeToComponentUpdates": _EMPTY,
    "DeferComponentUpdate": Structure({"deploymentId": string, "message": string, "recheckAfterMs": long}),
    "SubscribeToValidateConfigurationUpdates": _EMPTY,
    "SendConfigurationValidityReport": Structure(
        {
            "configurationValidityReport": Structure(
                {"status": string, "deploymentId": string, "message": string},
            )
        }
    ),
}


def decode(operation: str, payload: bytes) -> dict[str, Any]:
    """The request of `operation` (its name without the namespace) as the nucleus would read it; an operation
    localgg does not handle only needs a JSON object."""
    try:
        value = json.loads(payload.decode())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Malformed("the request is not JSON") from None
    if value is None:  # Gson reads `null` (and nothing) as no object at all, which postFromJson then trips on
        raise Malformed("the request is null")
    return REQUESTS.get(operation, _EMPTY)(value, "request")
