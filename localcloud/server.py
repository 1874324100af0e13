"""The local Greengrass endpoint: HTTP on loopback for what a core and the tooling call besides moto's services.

- greengrassv2 (control plane and ResolveComponentCandidates), REST-JSON per the real service model;
- the IoT jobs data plane (`iot-jobs-data`), through which a core takes its deployments;
- the IoT credentials provider (`/role-aliases/<alias>/credentials`), when one is given.

IoT's job operations (DescribeJob, ListJobs, ListJobExecutionsForJob/ForThing, DescribeJobExecution, CancelJob)
arrive through moto, which hands them to `Endpoint.invoke` (localcloud.moto_aws.bind_iot_jobs). Given a Throttle,
every operation is held to its rate and answered over it with the service's ThrottlingException, as AWS does.

Given a Guard (localcloud.sigv4), every request must name loopback as its Host, stay under the body cap and be
signed with a key the stack knows; otherwise it is answered as AWS answers an unauthenticated call. Every
request is handled under the control plane's one lock.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore import xform_name

from localcloud.credentials import CredentialsProvider
from localcloud.greengrassv2 import ControlPlane
from localcloud.jobs import IotJobs
from localcloud.restjson import Protocol, Reply, RequestError, ServiceError
from localcloud.sigv4 import Guard, Refusal
from localcloud.throttle import Throttle

log = logging.getLogger("localcloud.server")


class Endpoint:
    def __init__(
        self, plane: ControlPlane, credentials: CredentialsProvider | None = None, throttle: Throttle | None = None
    ) -> None:
        self.plane, self.credentials, self.throttle = plane, credentials, throttle
        self.protocols = [Protocol("greengrassv2"), Protocol("iot-jobs-data")]
        self.handlers: dict[str, Any] = {"greengrassv2": plane, "iot-jobs-data": plane.jobs, "iot": IotJobs(plane.jobs)}

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(target)
        if self.credentials is not None:
            reply = self.credentials.handle(method, url.path, headers)
            if reply is not None:
                return reply
        for protocol in self.protocols:
            try:
                operation, params = protocol.route(method, url.path, parse_qs(url.query), body)
            except LookupError:
                continue
            except RequestError as exc:
                return protocol.error("ValidationException", str(exc))
            try:
                output = self.invoke(protocol.model.service_name, operation, params)
            except ServiceError as exc:
                return protocol.error(exc.shape, str(exc), **exc.fields)
            return protocol.response(operation, output)
        return Reply(
            404, {"Content-Type": "application/json"}, f'{{"message": "no operation for {method} {url.path}"}}'.encode()
        )

    def invoke(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One operation of `service` (its endpoint prefix: greengrassv2, iot-jobs-data, iot); a ServiceError is
        the service's modeled error."""
        handler = getattr(self.handlers.get(service), xform_name(operation), None)
        if handler is None:
            # Answered as the service answers a caller that may not use an operation: the request was well
            # formed (not a ValidationException) and nothing went wrong on the server (not a 500).
            raise ServiceError("AccessDeniedException", f"{operation} is not offered by the local cloud")
        with self.plane.lock:
            wait = self.throttle.take(service, operation) if self.throttle is not None else 0.0
            if wait:
                raise ServiceError("ThrottlingException", "Rate exceeded", retryAfterSeconds=math.ceil(wait))
            output: dict[str, Any] = handler(params)
        log.debug("%s %s", operation, params.get("arn") or params.get("targetArn") or params.get("thingName") or "")
        return output


def _refused(refusal: Refusal) -> Reply:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": refusal.code}
    return Reply(refusal.status, headers, json.dumps({"message": refusal.message}).encode())


def serve(endpoint: Endpoint, port: int = 0, guard: Guard | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start serving on 127.0.0.1 in a background thread; returns the server and its endpoint URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            headers = dict(self.headers.items())
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            refusal = Refusal(400, "ValidationException", "bad Content-Length") if length < 0 else None
            if refusal is None and guard is not None:
                refusal = guard.check(headers, length)
            if refusal is not None:
                self.close_connection = True  # the body, if any, is left unread
                self._send(_refused(refusal))
                return
            body = self.rfile.read(length) if length else b""
            refusal = guard.verify(self.command, self.path, headers, body) if guard is not None else None
            if refusal is not None:
                self._send(_refused(refusal))
                return
            try:
                reply = endpoint.handle(self.command, self.path, headers, body)
            except Exception:  # a bug costs one request, answered as the service's internal error
                log.exception("%s %s failed", self.command, self.path)
                reply = Reply(
                    500,
                    {"Content-Type": "application/json", "x-amzn-ErrorType": "InternalServerException"},
                    b'{"message": "internal error in the local cloud"}',
                )
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="greengrass-endpoint").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
