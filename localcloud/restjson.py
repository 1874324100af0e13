"""The AWS REST-JSON protocol for a service, driven by botocore's own model of it. No sockets.

`route()` turns a request into (operation, parameters) with the model's URI templates, query strings and body
members; `response()` and `error()` turn results into what botocore parses for that operation: the model's
status code, JSON with blobs in base64 and timestamps as epoch seconds, errors typed by `x-amzn-ErrorType`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, Shape


class RequestError(Exception):
    """The request does not fit the model: answered as the service's ValidationException."""


class ServiceError(Exception):
    """Answered as the service's modeled error `shape` with these fields."""

    def __init__(self, shape: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.shape = shape
        self.fields = fields


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _template(uri: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", uri.split("?", 1)[0]):
        if piece.startswith("{"):
            name = piece[1:-1]
            parts.append(f"(?P<{name[:-1]}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + "$")


def _decode(shape: Shape, value: Any) -> Any:
    if shape.type_name == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise RequestError(f"{shape.name} is not base64") from None
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _decode(members[k], v) if k in members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_decode(shape.member, v) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _decode(shape.value, v) for k, v in value.items()}
    return value


def _encode(shape: Shape, value: Any) -> Any:
    if value is None:
        return None
    if shape.type_name == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if shape.type_name == "timestamp":
        return float(value)
    if shape.type_name == "structure":
        members = shape.members
        return {k: _encode(members[k], v) for k, v in value.items() if k in members and v is not None}
    if shape.type_name == "list":
        return [_encode(shape.member, v) for v in value]
    if shape.type_name == "map":
        return {k: _encode(shape.value, v) for k, v in value.items()}
    return value


class Protocol:
    def __init__(self, service: str) -> None:
        self.model = botocore.session.get_session().get_service_model(service)
        self._routes = [
            (self.model.operation_model(name), _template(self.model.operation_model(name).http["requestUri"]))
            for name in self.model.operation_names
        ]

    def route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[str, dict[str, Any]]:
        for operation, pattern in self._routes:
            if operation.http["method"] != method:
                continue
            match = pattern.match(path)
            if match is None:
                continue
            return operation.name, self._parameters(operation, match.groupdict(), query, body)
        raise LookupError(f"no operation for {method} {path}")

    def _parameters(
        self, operation: OperationModel, uri: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        try:
            document = json.loads(body) if body else {}
        except json.JSONDecodeError:
            raise RequestError("the body is not JSON") from None
        params: dict[str, Any] = {}
        for name, member in shape.members.items():
            location, wire = member.serialization.get("location"), member.serialization.get("name", name)
            if location == "uri" and wire in uri:
                params[name] = unquote(uri[wire])
            elif location == "querystring" and wire in query:
                raw = query[wire][0]
                params[name] = int(raw) if member.type_name == "integer" else raw
            elif location is None and wire in document:
                params[name] = _decode(member, document[wire])
        missing = [name for name in shape.required_members if name not in params]
        if missing:
            raise RequestError(f"missing required parameter(s): {', '.join(missing)}")
        return params

    def response(self, operation: str, output: dict[str, Any]) -> Reply:
        model = self.model.operation_model(operation)
        body = _encode(model.output_shape, output) if model.output_shape is not None else {}
        status = int(model.http.get("responseCode", 200))
        return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode() if status != 204 else b"")

    def error(self, shape_name: str, message: str, **fields: Any) -> Reply:
        """The modeled error: members the model carries in headers (Retry-After) go there, the rest in the body;
        fields the shape does not have are left out."""
        shape = self.model.shape_for(shape_name)
        status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": shape_name}
        body: dict[str, Any] = {"message": message}
        for name, value in fields.items():
            member = shape.members.get(name)
            if member is None:
                continue
            if member.serialization.get("location") == "header":
                headers[member.serialization.get("name", name)] = str(value)
            else:
                body[name] = value
        return Reply(status, headers, json.dumps(body).encode())
