"""Request rate limits as AWS applies them per API: a token bucket per operation (or per service). No I/O.

`Throttle.parse("DescribeJob=10,ListJobExecutionsForJob=10,greengrassv2=5")`: requests per second, by
operation name or by service (every operation of it without a limit of its own), each bucket holding one
second's worth. A request over its rate is refused with how long to wait, which the endpoint answers as the
service's ThrottlingException.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class ThrottleSpecError(ValueError):
    """A throttle specification that does not parse."""


@dataclass
class _Bucket:
    rate: float
    tokens: float
    at: float


@dataclass
class Throttle:
    rates: dict[str, float]
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str, clock: Callable[[], float] = time.monotonic) -> Throttle:
        rates: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, value = item.partition("=")
            try:
                rate = float(value)
            except ValueError:
                rate = 0.0
            if not name.strip() or rate <= 0:
                raise ThrottleSpecError(f"{item!r}: expected NAME=REQUESTS_PER_SECOND with a positive rate")
            rates[name.strip()] = rate
        return cls(rates, clock)

    def take(self, service: str, operation: str) -> float:
        """0 when the request may go ahead (it is counted), else the seconds until one would."""
        key = operation if operation in self.rates else service if service in self.rates else None
        if key is None:
            return 0.0
        now, rate = self.clock(), self.rates[key]
        bucket = self._buckets.setdefault(key, _Bucket(rate, rate, now))
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate
