"""What the hollow core devices' subscribers would send: a telemetry window every `telemetryWindowSeconds`, on the
jobs' clock, into the local cloud's rules engine as if it had reached IoT Core on `<prefix>/<thing>/telemetry`.

A hollow device that has the subscriber (a deployed component whose configuration names `telemetryTopicPrefix`) and
the model component (one whose configuration names a `profileFile`, read from its S3 artifact) sends windows in the
subscriber's format (schema edgeml.telemetry/1), its counts drawn from the profile: each feature's bins as the
training rows filled them, the predictions likewise, at `RATE` messages a second of `RECORDS` records each. With a
drift (`LOCAL_DRIFT=share:features:shift`, e.g. `0.1:alcohol,pH:1.0`), that share of the devices (drawn from the
seed, so a run repeats) see the named features moved by `shift` training standard deviations: each bin's share moves
with its values, spread evenly within the bin, so a drifted device's bins are what such inputs would fill.
The predictions are not moved: a hollow device has no model to ask.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from localcloud.hollow import Drift


class Clock(Protocol):
    """The jobs' clock (localcloud.hollow.ScaledClock): its seconds, and how long they take in real seconds."""

    def __call__(self) -> float: ...

    def real(self, seconds: float) -> float: ...


log = logging.getLogger("localcloud.hollow_telemetry")
SCHEMA = "edgeml.telemetry/1"
RATE = 1.0  # messages a second, the publisher's pace
RECORDS = 2  # records a message: the publisher's samples
LATENCY_SHARES = {7: 0.2, 8: 0.5, 9: 0.25, 12: 0.05}  # log-scale buckets (subscriber.telemetry): about 1 ms


@dataclass(frozen=True)
class Reference:
    """A model component's profile as the hollow devices draw from it."""

    sha256: str
    features: dict[str, tuple[np.ndarray, np.ndarray, float]]  # name -> (edges, shares, std)
    prediction: np.ndarray  # shares

    @classmethod
    def of(cls, raw: bytes) -> Reference:
        document = json.loads(raw)
        features = {
            name: (np.asarray(spec["edges"], float), _normal(spec["shares"]), float(spec.get("std") or 0.0))
            for name, spec in document["features"].items()
        }
        return cls(hashlib.sha256(raw).hexdigest(), features, _normal(document["prediction"]["shares"]))

    def shares(self, name: str, shift_std: float) -> np.ndarray:
        edges, shares, std = self.features[name]
        if not shift_std or not std:
            return shares
        moved = np.zeros_like(shares)
        shift = shift_std * std
        for inner in range(1, len(edges)):  # bin `inner` holds [edges[inner-1], edges[inner])
            low, high = edges[inner - 1] + shift, edges[inner] + shift
            if shares[inner] == 0 or high <= low:
                continue
            for target in range(len(edges) + 1):
                bottom = -np.inf if target == 0 else edges[target - 1]
                top = np.inf if target == len(edges) else edges[target]
                overlap = max(0.0, min(high, top) - max(low, bottom))
                moved[target] += shares[inner] * overlap / (high - low)
        return _normal(moved)


def _normal(shares: Any) -> np.ndarray:
    array = np.asarray(shares, float)
    return array / array.sum() if array.sum() > 0 else array


@dataclass(frozen=True)
class Setup:
    """What a device's deployed components say: where windows go, how often, and with which models."""

    topic_prefix: str
    seconds: float
    reference: Reference | None
    champion: str
    model_version: str


class HollowTelemetry:
    def __init__(
        self,
        things: list[str],
        drift: Drift,
        clock: Clock,
        setup_of: Callable[[str], Setup | None],
        deliver: Callable[[str, bytes, str], object],
        seed: int = 0,
    ) -> None:
        """`setup_of(thing)`: None while the device lacks the subscriber; `deliver(topic, payload, client id)`."""
        self.clock, self.setup_of, self.deliver, self.drift = clock, setup_of, deliver, drift
        self.things = things
        self._rng = {thing: np.random.default_rng([seed, index]) for index, thing in enumerate(things)}
        self._drifted = {thing: drift.drifted(index) for index, thing in enumerate(things)}
        self._runs: dict[str, tuple[float, int, float]] = {}  # thing -> (started, next seq, window start)
        self._moved: dict[tuple[str, str, float], np.ndarray] = {}
        self._due: list[tuple[float, int, str]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hollow-telemetry")
        self.sent = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def drifted(self) -> list[str]:
        return [thing for thing, moved in self._drifted.items() if moved]

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.step(self.clock())
            self._stop.wait(min(max(self.clock.real(wait), 0.01), 1.0))

    def step(self, now: float) -> float:
        """Sends every window due by `now` (the clock's seconds); the clock's seconds until the next is due."""
        if self._due is None:  # spread over the first ten seconds, as real devices start apart
            self._due = [(now + random.Random(i).uniform(0, 10), i, thing) for i, thing in enumerate(self.things)]
            heapq.heapify(self._due)
        while self._due and self._due[0][0] <= now:
            _, index, thing = heapq.heappop(self._due)
            heapq.heappush(self._due, (now + self._tick(thing, now), index, thing))
        return self._due[0][0] - now if self._due else 1.0

    def _tick(self, thing: str, now: float) -> float:
        """Sends the device's window if one is due; the seconds until it is asked again."""
        try:
            setup = self.setup_of(thing)
        except Exception:  # a component being replaced while read: asked again shortly
            log.exception("hollow telemetry of %s", thing)
            setup = None
        if setup is None or not setup.topic_prefix:
            self._runs.pop(thing, None)
            return 10.0
        if thing not in self._runs:  # the subscriber just arrived: its first window closes a window from now
            self._runs[thing] = (now, 0, now)
            return setup.seconds
        started, seq, start = self._runs[thing]
        window = self.window(thing, setup, started, seq, start, now)
        self.deliver(
            f"{setup.topic_prefix}/{thing}/telemetry", json.dumps(window, separators=(",", ":")).encode(), thing
        )
        self.sent += 1
        self._runs[thing] = (started, seq + 1, now)
        return setup.seconds

    def _shares(self, reference: Reference, name: str, moved: bool) -> np.ndarray:
        shift = self.drift.shift if moved and name in self.drift.features else 0.0
        key = (reference.sha256, name, shift)
        if key not in self._moved:
            self._moved[key] = reference.shares(name, shift)
        return self._moved[key]

    def window(self, thing: str, setup: Setup, started: float, seq: int, start: float, end: float) -> dict[str, Any]:
        rng = self._rng[thing]
        messages = int(rng.poisson(RATE * (end - start)))
        records = messages * RECORDS
        buckets = np.zeros(max(LATENCY_SHARES) + 1, int)
        buckets[list(LATENCY_SHARES)] = rng.multinomial(messages, list(LATENCY_SHARES.values()))
        window: dict[str, Any] = {
            "schema": SCHEMA,
            "thing": thing,
            "started": round(started, 3),
            "seq": seq,
            "start": round(start, 3),
            "end": round(end, 3),
            "model_version": setup.model_version,
            "champion": setup.champion,
            "profile": setup.reference.sha256 if setup.reference else None,
            "messages": messages,
            "records": records,
            "batches": messages,
            "dropped": 0,
            "unsent": 0,
            "rejected": {},
            "latency": buckets.tolist(),
        }
        reference = setup.reference
        if reference is not None:
            moved = self._drifted[thing]
            window["features"] = [
                rng.multinomial(records, self._shares(reference, name, moved)).tolist() for name in reference.features
            ]
            window["prediction"] = rng.multinomial(records, reference.prediction).tolist()
        return window


def setup_reader(
    recipe_of: Callable[[str, str], dict[str, Any] | None], read: Callable[[str], bytes | None]
) -> Callable[[tuple[tuple[str, str], ...]], Setup | None]:
    """`recipe_of(name, version)`: a registered recipe; `read(uri)`: an s3:// artifact's bytes. The setup that a set of
    installed components (name, version) gives, cached: a fleet shares a handful of them."""
    cache: dict[tuple[tuple[str, str], ...], Setup | None] = {}

    def setup(installed: tuple[tuple[str, str], ...]) -> Setup | None:
        if installed not in cache:
            cache[installed] = _setup(installed, recipe_of, read)
        return cache[installed]

    return setup


def _setup(
    installed: tuple[tuple[str, str], ...],
    recipe_of: Callable[[str, str], dict[str, Any] | None],
    read: Callable[[str], bytes | None],
) -> Setup | None:
    subscriber, model = None, None
    for name, version in installed:
        recipe = recipe_of(name, version) or {}
        configuration = (recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
        if "telemetryTopicPrefix" in configuration:
            subscriber = configuration
        if "profileFile" in configuration:
            model = (recipe, configuration)
    if subscriber is None:
        return None
    reference, champion, version = None, "", ""
    if model is not None:
        recipe, configuration = model
        champion = str(((configuration.get("models") or {}).get("champion") or {}).get("sha256") or "")
        version = str(configuration.get("modelVersion") or recipe.get("ComponentVersion") or "")
        name = str(configuration.get("profileFile") or "")
        uris = [
            str(artifact.get("URI"))
            for manifest in recipe.get("Manifests") or []
            for artifact in manifest.get("Artifacts") or []
            if name and str(artifact.get("URI", "")).endswith("/" + name)
        ]
        raw = read(uris[0]) if uris else None
        reference = Reference.of(raw) if raw else None
    return Setup(
        str(subscriber["telemetryTopicPrefix"]),
        float(subscriber.get("telemetryWindowSeconds") or 300),
        reference,
        champion,
        version,
    )
