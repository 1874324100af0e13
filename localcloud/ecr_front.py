"""The registry endpoint as ECR serves it: every call of the Docker Registry HTTP API is authorized as the IAM
identity whose GetAuthorizationToken gave the password it carries, for the ECR action that call is, on the
repository it names. Allowed calls go on to the distribution registry behind it (localcloud.registry), which
holds the images and answers only the stack.

Why a front and not the registry's own token auth: ECR decides per call (the ECR User Guide's "Required IAM
permissions for pushing an image" lists ecr:BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
CompleteLayerUpload and PutImage, and pulling needs BatchGetImage and GetDownloadUrlForLayer; the ECR API reference
says of each of the layer actions that "the Amazon ECR proxy" uses it), refuses a repository that was never
created (NAME_UNKNOWN) where a registry makes one on the first push, and names the refused action in its answer,
which `docker push` prints ("denied: User: ... is not authorized to perform: ecr:InitiateLayerUpload ...").
A token lasts 12 hours (GetAuthorizationToken's `expiresAt`); its holder's policies are read at each call."""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from localcloud import audit
from localcloud.registry import USER

TOKEN_LIFETIME = 12 * 3600.0
CHUNK = 1 << 20
# Headers of one hop (RFC 9110, 7.6.1), and the caller's credentials, which are not the registry's.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "authorization"}


class Caller(Protocol):
    """Whoever asked for the token: its ARN, and whether its policies allow an action on a resource now."""

    @property
    def arn(self) -> str: ...

    def permits(self, action: str, resource: str) -> bool: ...


@dataclass(frozen=True)
class Grant:
    caller: Caller | None  # None: the local cloud does not enforce IAM (moto's default), so neither does its ECR
    expires: float


class Tokens:
    """The passwords GetAuthorizationToken handed out, each bound to its caller until it expires."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, caller: Caller | None) -> tuple[str, float]:
        """A new password for `caller`, and when it expires (epoch seconds)."""
        now = self.clock()
        password, expires = secrets.token_urlsafe(48), now + TOKEN_LIFETIME
        with self._lock:
            self._grants = {key: grant for key, grant in self._grants.items() if grant.expires > now}
            self._grants[password] = Grant(caller, expires)
        return password, expires

    def grant(self, password: str) -> Grant | None:
        with self._lock:
            return self._grants.get(password)


@dataclass(frozen=True)
class Call:
    """One registry API call as ECR authorizes it."""

    action: str  # the IAM action, `ecr:...`
    repository: str


# (method, path pattern) -> action; the repository name may hold slashes (`edgeml/subscriber`).
_NAME = r"/v2/(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
_ROUTES: tuple[tuple[frozenset[str], re.Pattern[str], str], ...] = tuple(
    (frozenset(methods.split()), re.compile(pattern + "$"), action)
    for methods, pattern, action in (
        ("GET HEAD", _NAME + r"/manifests/[^/]+", "ecr:BatchGetImage"),
        ("PUT", _NAME + r"/manifests/[^/]+", "ecr:PutImage"),
        ("DELETE", _NAME + r"/manifests/[^/]+", "ecr:BatchDeleteImage"),
        ("GET", _NAME + r"/tags/list", "ecr:ListImages"),
        ("POST", _NAME + r"/blobs/uploads/?", "ecr:InitiateLayerUpload"),
        # An upload's status and its cancellation are part of uploading it.
        ("PATCH GET DELETE", _NAME + r"/blobs/uploads/[^/]+", "ecr:UploadLayerPart"),
        ("PUT", _NAME + r"/blobs/uploads/[^/]+", "ecr:CompleteLayerUpload"),
        ("HEAD", _NAME + r"/blobs/sha256:[0-9a-f]{64}", "ecr:BatchCheckLayerAvailability"),
        ("GET", _NAME + r"/blobs/sha256:[0-9a-f]{64}", "ecr:GetDownloadUrlForLayer"),
    )
)


def call_of(method: str, path: str) -> Call | None:
    """The ECR action a registry call is, None for one ECR does not serve (the catalog, deleting a blob)."""
    for methods, pattern, action in _ROUTES:
        matched = pattern.match(path)
        if method in methods and matched:
            return Call(action, matched["name"])
    return None


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, challenge: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.challenge = status, code, message, challenge


def password_of(authorization: str) -> str:
    """The password of `Basic base64(AWS:<password>)`, as `docker login -u AWS` sends it."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise Refused(401, "UNAUTHORIZED", "Not Authorized", challenge=True)
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        raise Refused(401, "UNAUTHORIZED", "Not Authorized", challenge=True) from None
    if user != USER:
        raise Refused(401, "UNAUTHORIZED", "Not Authorized", challenge=True)
    return password


class Front:
    """The WSGI application: authorize, then forward to the registry at `backend` (host:port) with its own
    password. `repository_arn` names a repository of the account's ECR, None when it was never created."""

    def __init__(
        self,
        backend: str,
        backend_password: str | None,
        tokens: Tokens,
        repository_arn: Callable[[str], str | None],
        account: str,
    ) -> None:
        self.backend, self.tokens, self.repository_arn, self.account = backend, tokens, repository_arn, account
        self.backend_auth = (
            "Basic " + base64.b64encode(f"{USER}:{backend_password}".encode()).decode() if backend_password else None
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            path, query = self.authorized(environ)
        except Refused as refused:
            return self.refusal(refused, environ, start_response)
        return self.forward(environ, path, query, start_response)

    def authorized(self, environ: dict[str, Any]) -> tuple[str, str]:
        """The path and query to forward, once the caller may make this call."""
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        grant = self.tokens.grant(password_of(environ.get("HTTP_AUTHORIZATION", "")))
        if grant is None:
            raise Refused(401, "UNAUTHORIZED", "Not Authorized", challenge=True)
        if grant.expires <= self.tokens.clock():
            raise Refused(403, "DENIED", "Your authorization token has expired. Reauthenticate and try again.")
        query = environ.get("QUERY_STRING", "")
        if path in ("/v2", "/v2/"):
            return "/v2/", ""
        call = call_of(method, path)
        if call is None:
            raise Refused(405, "UNSUPPORTED", "The operation is unsupported.")
        resource = self.repository_arn(call.repository)
        if resource is None:
            raise Refused(
                404,
                "NAME_UNKNOWN",
                f"The repository with name '{call.repository}' does not exist in the registry with id '{self.account}'",
            )
        if grant.caller is not None:
            if not grant.caller.permits(call.action, resource):
                raise Refused(
                    403,
                    "DENIED",
                    f"User: {grant.caller.arn} is not authorized to perform: {call.action} on resource: {resource} "
                    f"because no identity-based policy allows the {call.action} action",
                )
            audit.allowed(grant.caller.arn, call.action)
        if call.action == "ecr:InitiateLayerUpload":
            # A cross-repository mount would read a layer of another repository without asking for it: start a
            # plain upload instead, which is what the registry answers a mount it cannot make.
            query = urlencode(
                [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in ("mount", "from")]
            )
        return path, query

    def refusal(self, refused: Refused, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = json.dumps({"errors": [{"code": refused.code, "message": refused.message, "detail": None}]}).encode()
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body)))]
        headers.append(("Docker-Distribution-Api-Version", "registry/2.0"))
        if refused.challenge:
            host = environ.get("HTTP_HOST", "")
            headers.append(("WWW-Authenticate", f'Basic realm="http://{host}/",service="ecr.amazonaws.com"'))
        start_response(f"{refused.status} {http.client.responses.get(refused.status, '')}", headers)
        _drain(environ)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def forward(
        self, environ: dict[str, Any], path: str, query: str, start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        connection = http.client.HTTPConnection(self.backend, timeout=300)
        connection.putrequest(environ["REQUEST_METHOD"], path + (f"?{query}" if query else ""), skip_host=True,
                              skip_accept_encoding=True)  # fmt: skip
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
                if name not in _NOT_FORWARDED:
                    connection.putheader(name, value)
        if environ.get("CONTENT_TYPE"):
            connection.putheader("Content-Type", environ["CONTENT_TYPE"])
        if self.backend_auth:
            connection.putheader("Authorization", self.backend_auth)
        length = environ.get("CONTENT_LENGTH")
        if length:
            connection.putheader("Content-Length", length)
            connection.endheaders()
            for chunk in _body(environ, int(length)):
                connection.send(chunk)
        elif environ.get("wsgi.input_terminated"):  # a chunked body, its end known to the server
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            for chunk in _body(environ, None):
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        else:
            connection.endheaders()
        answer = connection.getresponse()
        headers = [(name, value) for name, value in answer.getheaders() if name.lower() not in _NOT_FORWARDED]
        start_response(f"{answer.status} {answer.reason}", headers)
        return _streamed(connection, answer)


def _body(environ: dict[str, Any], length: int | None) -> Iterator[bytes]:
    stream, left = environ["wsgi.input"], length
    while left is None or left > 0:
        chunk = stream.read(CHUNK if left is None else min(CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def _drain(environ: dict[str, Any]) -> None:
    """Read a refused request's body, so the connection can carry the client's next request."""
    length = environ.get("CONTENT_LENGTH")
    if length or environ.get("wsgi.input_terminated"):
        for _ in _body(environ, int(length) if length else None):
            pass


def _streamed(connection: http.client.HTTPConnection, answer: http.client.HTTPResponse) -> Iterator[bytes]:
    try:
        while chunk := answer.read(CHUNK):
            yield chunk
    finally:
        connection.close()


class _Handler(WSGIRequestHandler):
    timeout = 300  # a client that stops sending frees its thread

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Not a line per layer part in the stack's log."""


def serve(front: Front) -> tuple[BaseWSGIServer, str]:
    """The front on a port of 127.0.0.1 the kernel picks, a thread per connection; returns the server and its
    host:port. Stop it with `shutdown()`."""
    server = make_server("127.0.0.1", 0, front, threaded=True, request_handler=_Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="ecr-front").start()
    return server, f"127.0.0.1:{server.port}"
