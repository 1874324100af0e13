"""The local Greengrass endpoint: HTTP on loopback for what a core and the tooling call besides moto's services.

- greengrassv2 (control plane and ResolveComponentCandidates), REST-JSON per the real service model;
- the IoT jobs data plane (`iot-jobs-data`), through which a core takes its deployments;
- the IoT credentials provider (`/role-aliases/<alias>/credentials`), when one is given.

IoT's job operations (DescribeJob, ListJobs, ListJobExecutionsForJob/ForThing, DescribeJobExecution, CancelJob)
arrive through moto, which hands them to `Endpoint.invoke` (localcloud.moto_aws.bind_iot_jobs). Given a Throttle,
every operation is held to its rate and answered over it with the service's ThrottlingException, as AWS does.

Given a Guard (localcloud.sigv4), every request must name loopback as its Host, stay under the body cap and be
signed with a key the stack knows; otherwise it is answered as AWS answers an unauthenticated call, before its body
is read. Every request is handled under the control plane's one lock. A connection that sends nothing for
IDLE_TIMEOUT seconds is closed, and at most MAX_CONNECTIONS are served at once (a thread each): anyone on the
machine can connect to a loopback port, and holding sockets open costs the stack nothing past those bounds.
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

from localcloud import audit, iotpolicy
from localcloud.credentials import CredentialsProvider
from localcloud.greengrassv2 import ControlPlane
from localcloud.identities import Caller, Identities
from localcloud.jobs import IotJobs
from localcloud.restjson import Protocol, Reply, RequestError, ServiceError
from localcloud.sigv4 import Guard, Refusal, Signed
from localcloud.throttle import Throttle

log = logging.getLogger("localcloud.server")


# What a core device may call here, and as which IoT policy action: the Greengrass data plane's own actions
# (developer guide, "Minimal AWS IoT policy for AWS IoT Greengrass V2 core devices"), and the jobs data plane as the
# MQTT publish a nucleus makes for the same request on its jobs topics (the twin's devices use the HTTP one).
DEVICE_GREENGRASS = frozenset(
    {"ResolveComponentCandidates", "GetComponentVersionArtifact", "GetDeploymentConfiguration",
     "ListThingGroupsForCoreDevice"}
)  # fmt: skip
JOB_TOPICS = {
    "StartNextPendingJobExecution": "$aws/things/{thing}/jobs/start-next",
    "GetPendingJobExecutions": "$aws/things/{thing}/jobs/get",
    "DescribeJobExecution": "$aws/things/{thing}/jobs/{jobId}/get",
    "UpdateJobExecution": "$aws/things/{thing}/jobs/{jobId}/update",
}


# The IAM service prefixes of the endpoint's services (Service Authorization Reference).
IAM_PREFIX = {"greengrassv2": "greengrass", "iot-jobs-data": "iotjobsdata", "iot": "iot"}
# What the caller must also be allowed for an action that acts for it elsewhere: a deployment is an IoT job and
# the device's deployment shadow (Service Authorization Reference, AWS IoT Greengrass V2, "Dependent actions").
DEPENDENT_ACTIONS = {
    "greengrass:CreateDeployment": (
        "iot:CancelJob",
        "iot:CreateJob",
        "iot:DeleteThingShadow",
        "iot:DescribeJob",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
        "iot:UpdateJob",
        "iot:UpdateThingShadow",
    ),
}


class Endpoint:
    def __init__(
        self,
        plane: ControlPlane,
        credentials: CredentialsProvider | None = None,
        throttle: Throttle | None = None,
        identities: Identities | None = None,
    ) -> None:
        """`identities`: who may call (localcloud.identities); None lets every signed caller do everything."""
        self.plane, self.credentials, self.throttle, self.identities = plane, credentials, throttle, identities
        self.protocols = [Protocol("greengrassv2"), Protocol("iot-jobs-data")]
        self.handlers: dict[str, Any] = {"greengrassv2": plane, "iot-jobs-data": plane.jobs, "iot": IotJobs(plane.jobs)}

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, key_id: str = "") -> Reply:
        url = urlsplit(target)
        caller = self.identities.caller(key_id) if self.identities is not None else Caller(key_id)
        if self.credentials is not None:
            reply = self.credentials.handle(method, url.path, headers, caller)
            if reply is not None:
                return reply
        for protocol in self.protocols:
            try:
                operation, params = protocol.route(method, url.path, parse_qs(url.query), body)
            except LookupError:
                continue
            except RequestError as exc:
                return protocol.error("ValidationException", str(exc))
            refused = self._refusal(caller, protocol.model.service_name, operation, params)
            if refused:
                return protocol.error("AccessDeniedException", refused)
            try:
                output = self.invoke(protocol.model.service_name, operation, params)
            except ServiceError as exc:
                return protocol.error(exc.shape, str(exc), **exc.fields)
            return protocol.response(operation, output)
        return Reply(
            404, {"Content-Type": "application/json"}, f'{{"message": "no operation for {method} {url.path}"}}'.encode()
        )

    def _refusal(self, caller: Caller, service: str, operation: str, params: dict[str, Any]) -> str:
        """Why the caller may not make this call ("" when it may). A device: only the data-plane calls a core
        makes, for the things its certificate is attached to, as the IoT policies attached to it allow. An IAM user:
        what its identity policies allow (`greengrass:<operation>`, `iotjobsdata:<operation>`)."""
        if caller.user is not None:
            action = f"{IAM_PREFIX[service]}:{operation}"
            for needed in (action, *DEPENDENT_ACTIONS.get(action, ())):
                if not caller.user.permits(needed):
                    return f"User: {caller.user.arn} is not authorized to perform: {needed}"
                audit.allowed(caller.user.arn, needed)
            return ""
        if not caller.is_device:
            return ""
        region, account = self.plane.region, self.plane.account
        arn = f"arn:aws:iot:{region}:{account}"
        if service == "greengrassv2" and operation in DEVICE_GREENGRASS:
            request = iotpolicy.Request(f"greengrass:{operation}", "*")
        elif service == "iot-jobs-data" and operation in JOB_TOPICS:
            thing = str(params.get("thingName", ""))
            if not caller.acts_for(thing):
                return f"the certificate {caller.key_id} is not attached to thing {thing}"
            topic = JOB_TOPICS[operation].format(thing=thing, jobId=params.get("jobId", ""))
            request = iotpolicy.Request("iot:Publish", f"{arn}:topic/{topic}")
        else:
            return f"a core device's certificate may not call {operation}"
        if not caller.allowed(request, region, account):
            return f"no IoT policy of the certificate {caller.key_id} allows {request.action} on {request.resource}"
        return ""

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


IDLE_TIMEOUT = 60.0  # seconds a connection may send nothing (between requests too)
MAX_CONNECTIONS = 256  # served at once


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, up to `slots` at once; a connection over that is closed unanswered."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], slots: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(slots)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("Greengrass endpoint: %d connections already served; one more closed", MAX_CONNECTIONS)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve(endpoint: Endpoint, port: int = 0, guard: Guard | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start serving on 127.0.0.1 in a background thread; returns the server and its endpoint URL."""

    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_TIMEOUT

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
            verdict = guard.verify(self.command, self.path, headers, body) if guard is not None else Signed("")
            if isinstance(verdict, Refusal):
                self._send(_refused(verdict))
                return
            try:
                reply = endpoint.handle(self.command, self.path, headers, body, verdict.key_id)
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

    server = _BoundedServer(("127.0.0.1", port), Handler, MAX_CONNECTIONS)
    threading.Thread(target=server.serve_forever, daemon=True, name="greengrass-endpoint").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
