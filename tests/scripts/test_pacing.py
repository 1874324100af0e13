"""Waiting out throttling as the service asks, and no longer than the tooling's bound: greengrassv2 says how long in
`retryAfterSeconds` (its Retry-After header, API reference: ThrottlingException), and whatever answers at the
endpoint can say anything there. The attack: a Retry-After of a day, of infinity, of no number."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from scripts.fleet.pacing import MAX_BACKOFF, Pacer, retry_after


def throttled(retry_after_seconds: Any = None, header: str | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
    if retry_after_seconds is not None:
        response["retryAfterSeconds"] = retry_after_seconds
    if header is not None:
        response["ResponseMetadata"] = {"HTTPHeaders": {"retry-after": header}}
    return ClientError(response, "ListCoreDevices")


@pytest.mark.parametrize(
    ("error", "wait"),
    [
        (throttled(2), 2.0),
        (throttled(header="3"), 3.0),
        (throttled(86_400), MAX_BACKOFF),  # a day
        (throttled(header="1e308"), MAX_BACKOFF),
        (throttled(header="inf"), None),  # not a wait: the doubling backoff instead
        (throttled(header="nan"), None),
        (throttled(header="Wed, 21 Oct 2026 07:28:00 GMT"), None),
        (throttled(-5), 0.0),
        (throttled(), None),
    ],
)
def test_a_told_wait_is_taken_within_the_bound(error: ClientError, wait: float | None) -> None:
    assert retry_after(error) == wait


def test_a_throttled_call_never_sleeps_past_the_bound() -> None:
    slept: list[float] = []
    refusals = iter([throttled(10**9), throttled(header="inf")])

    def operation() -> str:
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal
        return "listed"

    pacer = Pacer(rate=1000.0, sleep=slept.append)
    assert pacer.call("list the core devices", operation) == "listed"
    assert pacer.throttled == 2 and slept and max(slept) <= MAX_BACKOFF
