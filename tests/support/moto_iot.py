"""moto as a real HTTP endpoint, with the IoT tagging API that Terraform's AWS provider needs.

moto 5.x has no IoT TagResource/UntagResource/ListTagsForResource, and the provider retries
ListTagsForResource for over ten minutes, so `terraform apply` would hang on every IoT resource. This adds
the three operations, records the tags that create calls carry, and serves everything on a loopback port.
Test-only: it patches moto's IoT response class in this process.

`python -m tests.support.moto_iot --port N` runs the server in the foreground.
"""

from __future__ import annotations

import argparse
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.iot.responses import IoTResponse
from moto.server import ThreadedMotoServer

_TAGS: dict[str, dict[str, str]] = {}
_LOCK = threading.Lock()


def _tag(arn: str, tags: list[dict[str, str]] | None) -> None:
    with _LOCK:
        _TAGS.setdefault(arn, {}).update({t["Key"]: t["Value"] for t in tags or []})


def _list_tags_for_resource(self: IoTResponse) -> ActionResult:
    with _LOCK:
        tags = dict(_TAGS.get(self._get_param("resourceArn"), {}))
    return ActionResult({"tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})


def _tag_resource(self: IoTResponse) -> EmptyResult:
    _tag(self._get_param("resourceArn"), self._get_param("tags"))
    return EmptyResult()


def _untag_resource(self: IoTResponse) -> EmptyResult:
    with _LOCK:
        tags = _TAGS.get(self._get_param("resourceArn"), {})
        for key in self._get_param("tagKeys") or []:
            tags.pop(key, None)
    return EmptyResult()


def _recording_tags(create: Callable[[IoTResponse], ActionResult], arn_field: str) -> Callable[[IoTResponse], Any]:
    def wrapper(self: IoTResponse) -> ActionResult:
        result = create(self)
        created = result.result
        if isinstance(created, dict) and created.get(arn_field):
            _tag(created[arn_field], self._get_param("tags"))
        return result

    return wrapper


def install() -> None:
    """Patch moto's IoT responses (idempotent)."""
    if getattr(IoTResponse, "_edgeml_tagging", False):
        return
    IoTResponse.list_tags_for_resource = _list_tags_for_resource  # type: ignore[attr-defined]
    IoTResponse.tag_resource = _tag_resource  # type: ignore[attr-defined]
    IoTResponse.untag_resource = _untag_resource  # type: ignore[attr-defined]
    for method, arn_field in (
        ("create_thing_group", "thingGroupArn"),
        ("create_role_alias", "roleAliasArn"),
        ("create_policy", "policyArn"),
        ("create_thing_type", "thingTypeArn"),
    ):
        setattr(IoTResponse, method, _recording_tags(getattr(IoTResponse, method), arn_field))
    IoTResponse._edgeml_tagging = True  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(port: int | None = None) -> tuple[ThreadedMotoServer, str]:
    install()
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server, url = start(args.port or None)
    print(url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
