"""The local greengrassv2 endpoint: HTTP on loopback, REST-JSON per the real service model, one lock."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from botocore import xform_name

from localcloud.greengrassv2 import ControlPlane, ServiceError
from localcloud.restjson import Protocol, Reply, RequestError

log = logging.getLogger("localcloud.greengrassv2")


class Endpoint:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.protocol = Protocol("greengrassv2")

    def handle(self, method: str, target: str, body: bytes) -> Reply:
        url = urlsplit(target)
        try:
            operation, params = self.protocol.route(method, url.path, parse_qs(url.query), body)
        except LookupError as exc:
            return Reply(404, {"Content-Type": "application/json"}, f'{{"message": "{exc}"}}'.encode())
        except RequestError as exc:
            return self.protocol.error("ValidationException", str(exc))
        handler = getattr(self.plane, xform_name(operation), None)
        if handler is None:
            return self.protocol.error(
                "ValidationException", f"{operation} is not supported by the local control plane"
            )
        try:
            with self.plane.lock:
                output = handler(params)
        except ServiceError as exc:
            return self.protocol.error(exc.shape, str(exc), **exc.fields)
        log.info("%s %s", operation, params.get("arn") or params.get("targetArn") or "")
        return self.protocol.response(operation, output)


def serve(plane: ControlPlane, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving on 127.0.0.1 in a background thread; returns the server and its endpoint URL."""
    endpoint = Endpoint(plane)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            reply = endpoint.handle(self.command, self.path, self.rfile.read(length) if length else b"")
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
    threading.Thread(target=server.serve_forever, daemon=True, name="greengrassv2").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
