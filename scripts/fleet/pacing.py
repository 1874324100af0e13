"""Clients that keep to a request rate and wait out throttling as the service asks: what following a fleet needs
(`Watch`, the paced clients a fleet is read with).

Every HTTP request the clients send (retries included) first waits for its slot, so together they never exceed
`rate` requests a second. botocore's own retries are off for them: a ThrottlingException is waited out here, for
the `retryAfterSeconds` the service sent (greengrassv2's Retry-After) or else a doubling backoff, and counted. A
told wait is held to [0, MAX_BACKOFF]: an endpoint (or whatever answers in its name) cannot stop the tooling by
asking for a day, and a wait that is not a number is not one.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scripts.aws import MAX_ATTEMPTS, THROTTLED, error_code, explain

T = TypeVar("T")
ONE_ATTEMPT = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=10, read_timeout=60)
THROTTLE_ATTEMPTS = MAX_ATTEMPTS  # what AwsError says was tried
MAX_BACKOFF = 30.0


def retry_after(error: ClientError) -> float | None:
    """The wait a throttled request was told to observe, when the service said, held to [0, MAX_BACKOFF]."""
    told = error.response.get("retryAfterSeconds")
    if told is None:
        told = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
    try:
        seconds = float(told) if told is not None else None
    except (TypeError, ValueError):
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_BACKOFF)


@dataclass
class Pacer:
    rate: float = 5.0  # requests per second
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    calls: int = 0
    throttled: int = 0
    _next: float = field(default=0.0, repr=False)

    def client(self, session: boto3.Session, service: str, endpoint_url: str | None = None) -> Any:
        made = session.client(service, config=ONE_ATTEMPT, endpoint_url=endpoint_url)
        made.meta.events.register("before-send", self._pace)
        return made

    def _pace(self, **kwargs: Any) -> None:
        now = self.clock()
        if self._next > now:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.rate
        self.calls += 1

    def call(self, action: str, operation: Callable[..., T], **params: Any) -> T:
        """`operation(**params)`, throttling waited out; any other failure an AwsError naming `action`."""
        backoff = 1.0
        for attempt in itertools.count(1):
            try:
                return operation(**params)
            except ClientError as exc:
                if error_code(exc) not in THROTTLED or attempt >= THROTTLE_ATTEMPTS:
                    raise explain(action, exc) from exc
                wait = retry_after(exc)
            except BotoCoreError as exc:
                raise explain(action, exc) from exc
            self.throttled += 1
            self.sleep(wait if wait is not None else backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class Watch:
    """The paced clients a fleet and its releases are read with."""

    iot: Any
    gg: Any
    ecr: Any
    pacer: Pacer

    @classmethod
    def of(cls, session: boto3.Session, rate: float = 5.0) -> Watch:
        pacer = Pacer(rate)
        return cls(
            pacer.client(session, "iot"), pacer.client(session, "greengrassv2"), pacer.client(session, "ecr"), pacer
        )

    def call(self, action: str, operation: Callable[..., dict[str, Any]], **params: Any) -> dict[str, Any]:
        return self.pacer.call(action, operation, **params)

    def pages(self, action: str, operation: Callable[..., dict[str, Any]], key: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        while True:
            page = self.call(action, operation, **params)
            items += page.get(key, [])
            if not page.get("nextToken"):
                return items
            params["nextToken"] = page["nextToken"]
