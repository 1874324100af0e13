"""Telemetry windows: what the model saw and did, counted on the device and sent to AWS IoT Core now and then.

A window holds counts only, so windows add: any number of them, from any devices binned with the same profile,
merge into one by summing (`make monitor` does). Per feature, the records in each of the profile's bins; per
prediction, the same; the messages, records, batches, the messages rejected (by reason, and by the feature whose
value was missing or not finite), the messages dropped unscored; each message's latency, from its arrival to its
predictions, in fixed log-scale buckets (bucket 0: under LATENCY_BASE_MS; bucket k: under LATENCY_BASE_MS * 2^(k/2);
the last: anything longer), so quantiles merge too; a challenger's agreement as sums.

Every scored message is counted in exactly one window: a window is cut under the same lock that counts, and the
sequence number says which windows of a run (`started`) reached the account. Encoded as compact JSON (no spaces):
the features' bins as a list of lists in the profile's order (the profile, named by its SHA-256, names them), the
latency buckets as one list without its trailing zeros, and only the reject reasons and features that occurred. A
busy window of the wine model (1,000 messages a second for 300 s, with a challenger) is under 2 KB.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from subscriber.intake import Message
from subscriber.processing import Outcome
from subscriber.profile import Profile, bin_of

SCHEMA = "edgeml.telemetry/1"
LATENCY_BASE_MS = 0.1
LATENCY_BUCKETS = 40  # the last starts at 0.1 ms * 2^19.5, about 74 s


def latency_bucket(milliseconds: float) -> int:
    if milliseconds < LATENCY_BASE_MS:
        return 0
    return min(LATENCY_BUCKETS - 1, 1 + math.floor(2 * math.log2(milliseconds / LATENCY_BASE_MS)))


@dataclass(frozen=True)
class Identity:
    """What every window of this run names: the device, the models by content, the reference they are binned with."""

    thing: str
    champion: str  # sha256 of the model file
    challenger: str | None
    model_version: str
    started: float  # this run's start (epoch seconds): with `seq`, a window's identity


@dataclass(frozen=True)
class ShadowCounts:
    """A challenger's running totals (subscriber.shadow), read at each cut; a window holds their increase."""

    compared: int = 0
    abs_diff: float = 0.0
    sq_diff: float = 0.0
    failures: int = 0
    dropped: int = 0


class Window:
    def __init__(self, profile: Profile | None, start: float) -> None:
        self.profile, self.start = profile, start
        self.messages = self.records = self.batches = 0
        self.rejected: Counter[str] = Counter()
        self.missing: Counter[str] = Counter()
        self.nonfinite: Counter[str] = Counter()
        self.latency = [0] * LATENCY_BUCKETS
        self.features = {name: [0] * (len(edges) + 1) for name, edges in profile.features.items()} if profile else {}
        self.prediction = [0] * (len(profile.prediction) + 1) if profile else []

    def add(self, messages: list[Message], outcomes: list[Outcome], done: float) -> None:
        self.batches += 1
        self.messages += len(messages)
        for message, outcome in zip(messages, outcomes, strict=True):
            self.latency[latency_bucket((done - message.arrived) * 1000)] += 1
            if not outcome.ok:
                self._rejected(outcome.record)
                continue
            self.records += len(outcome.scored)
            if self.profile is not None:
                self._bin(outcome)

    def _rejected(self, record: dict[str, Any]) -> None:
        reason = str(record.get("error"))
        self.rejected[reason] += 1
        feature = record.get("feature")
        if isinstance(feature, str):
            (self.missing if reason == "missing_feature" else self.nonfinite)[feature] += 1

    def _bin(self, outcome: Outcome) -> None:
        assert self.profile is not None
        for name, edges in self.profile.features.items():
            counts = self.features[name]
            for record in outcome.scored:
                counts[bin_of(edges, record[name])] += 1
        edges = self.profile.prediction
        for prediction in outcome.record["predictions"]:
            for value in prediction if isinstance(prediction, list) else (prediction,):
                self.prediction[bin_of(edges, value)] += 1

    def document(
        self, identity: Identity, seq: int, end: float, dropped: int, unsent: int, shadow: ShadowCounts | None
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": SCHEMA,
            "thing": identity.thing,
            "started": round(identity.started, 3),
            "seq": seq,
            "start": round(self.start, 3),
            "end": round(end, 3),
            "model_version": identity.model_version,
            "champion": identity.champion,
            "profile": self.profile.sha256 if self.profile else None,  # None: "no reference", counts still flow
            "messages": self.messages,
            "records": self.records,
            "batches": self.batches,
            "dropped": dropped,
            "unsent": unsent,  # earlier windows the core refused to take (they are lost; counted here)
            "rejected": dict(self.rejected),
            "latency": self.latency[: max((k + 1 for k, n in enumerate(self.latency) if n), default=0)],
        }
        if self.profile is not None:
            document["features"] = list(self.features.values())
            document["prediction"] = self.prediction
        if self.missing:
            document["missing"] = dict(self.missing)
        if self.nonfinite:
            document["nonfinite"] = dict(self.nonfinite)
        if identity.challenger is not None and shadow is not None:
            document["challenger"] = {
                "sha256": identity.challenger,
                "compared": shadow.compared,
                "abs_diff": round(shadow.abs_diff, 6),
                "sq_diff": round(shadow.sq_diff, 6),
                "failures": shadow.failures,
                "dropped": shadow.dropped,
            }
        return document


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class Recorder:
    """Counts on the scoring thread (`scored`, `dropped_total`), cuts windows on another (`cut`), one lock between."""

    def __init__(self, identity: Identity, profile: Profile | None, clock: Any = time.time) -> None:
        self.identity, self.profile, self.clock = identity, profile, clock
        self._lock = threading.Lock()
        self._window = Window(profile, clock())
        self._seq = 0
        self._dropped_at_cut = 0
        self._shadow_at_cut = ShadowCounts()
        self._unsent = 0

    def scored(self, messages: list[Message], outcomes: list[Outcome], done: float) -> int:
        """Counts a scored batch (`done`: time.monotonic() when its predictions were made); the window's messages."""
        with self._lock:
            self._window.add(messages, outcomes, done)
            return self._window.messages

    def unsent(self) -> None:
        """A window the core refused: named in the next one."""
        with self._lock:
            self._unsent += 1

    def cut(self, dropped_total: int, shadow_total: ShadowCounts | None) -> dict[str, Any]:
        """The window since the last cut, and a new one begun. `dropped_total`: the intake's running count."""
        with self._lock:
            now = self.clock()
            shadow = None
            if shadow_total is not None:
                before = self._shadow_at_cut
                shadow = ShadowCounts(
                    shadow_total.compared - before.compared,
                    shadow_total.abs_diff - before.abs_diff,
                    shadow_total.sq_diff - before.sq_diff,
                    shadow_total.failures - before.failures,
                    shadow_total.dropped - before.dropped,
                )
                self._shadow_at_cut = shadow_total
            document = self._window.document(
                self.identity, self._seq, now, dropped_total - self._dropped_at_cut, self._unsent, shadow
            )
            self._window = Window(self.profile, now)
            self._seq += 1
            self._dropped_at_cut = dropped_total
            self._unsent = 0
            return document
