"""The one way tests wait for something that happens on another thread or process: poll a condition until it holds
or a deadline passes, and fail saying what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """`condition()`'s first truthy value within `timeout` seconds; an AssertionError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what or getattr(condition, '__name__', condition)}")
        time.sleep(interval)
