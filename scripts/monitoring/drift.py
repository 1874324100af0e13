"""How each device's inputs compare with what the model learnt from, and how fast and how fully it answers: from the
merged counts (scripts.monitoring.queries) and the model's reference profile.

Drift is the population stability index of each feature's bins and of the predictions' against the profile's
training shares: PSI = sum over bins of (observed - expected) * ln(observed / expected), each share smoothed by
EPSILON so that an empty bin counts without dividing by zero. The thresholds are the ones credit-scoring practice
has used since Siddiqi ("Credit Risk Scorecards", 2006) and model-monitoring tools repeat: under 0.1 no shift,
0.1 to 0.25 a moderate shift, over 0.25 a significant one. A device is flagged when any feature's PSI passes
SIGNIFICANT; sampling noise alone gives a PSI of about (bins - 1) / records, so a device with fewer than
MIN_RECORDS records is not judged.

Latency quantiles come from the merged log-scale buckets (subscriber.telemetry): a quantile is reported as the
upper edge of the bucket it falls in, so it is never under the truth by more than one bucket (a factor of 1.41).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scripts.monitoring.queries import Merged

EPSILON = 1e-4
MODERATE, SIGNIFICANT = 0.1, 0.25
MIN_RECORDS = 500
LATENCY_BASE_MS = 0.1


def psi(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(psis(observed[np.newaxis, :], expected)[0])


def psis(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """PSI of each row of counts (the last axis: bins) against one set of shares; 0 for a row with no counts."""
    totals = observed.sum(axis=-1, keepdims=True)
    o = np.maximum(np.divide(observed, totals, out=np.zeros_like(observed, dtype=float), where=totals > 0), EPSILON)
    e = np.maximum(np.asarray(expected, float), EPSILON)
    return np.where(totals[..., 0] > 0, np.sum((o - e) * np.log(o / e), axis=-1), 0.0)


def bucket_upper_ms(bucket: int) -> float:
    """Bucket 0 is under 0.1 ms; bucket k under 0.1 ms * 2^(k/2)."""
    return LATENCY_BASE_MS * 2 ** (bucket / 2)


def quantile_ms(counts: np.ndarray, q: float) -> float | None:
    total = counts.sum()
    if total == 0:
        return None
    index = int(np.searchsorted(np.cumsum(counts), q * total))
    return round(bucket_upper_ms(min(index, len(counts) - 1)), 3)


@dataclass(frozen=True)
class Reference:
    """A profile as `make model` writes it: the features in the model's order, each with its training shares."""

    sha256: str
    features: dict[str, list[float]]
    prediction: list[float]

    @classmethod
    def of(cls, sha256: str, document: dict[str, Any]) -> Reference:
        features = {name: list(spec["shares"]) for name, spec in document["features"].items()}
        return cls(sha256, features, list(document["prediction"]["shares"]))

    def matrix(self) -> np.ndarray:
        """The features' shares as rows of one width, padded with zeros (a padded bin adds nothing to a PSI)."""
        width = max(len(shares) for shares in self.features.values())
        padded = np.zeros((len(self.features), width))
        for row, shares in enumerate(self.features.values()):
            padded[row, : len(shares)] = shares
        return padded


@dataclass(frozen=True)
class Device:
    device: str
    messages: int
    records: int
    dropped: int
    unsent: int
    windows: int
    lost_windows: int  # missing from a run's numbering: lost between the device and the account
    messages_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    model_versions: list[str]
    reference: str | None  # the profile's sha256, None: the windows carry no reference
    psi: dict[str, float] = field(default_factory=dict)
    prediction_psi: float | None = None
    drifting: list[str] = field(default_factory=list)  # features over SIGNIFICANT, worst first
    judged: bool = False  # enough records to judge drift


@dataclass(frozen=True)
class Assessment:
    devices: list[Device]
    group: dict[str, Any]
    unknown_profiles: list[str]  # windows named a profile the account does not hold
    feature_names: list[str]

    def record(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "devices": [asdict(device) for device in self.devices],
            "drifting": [d.device for d in sorted(self.drifting(), key=_worst, reverse=True)],
            "unknown_profiles": self.unknown_profiles,
            "thresholds": {"moderate": MODERATE, "significant": SIGNIFICANT, "min_records": MIN_RECORDS},
        }

    def drifting(self) -> list[Device]:
        return [device for device in self.devices if device.drifting]


def _worst(device: Device) -> float:
    return max(device.psi.values(), default=0.0)


def assess(merged: Merged, references: dict[str, Reference]) -> Assessment:
    predictions: dict[str, dict[int, int]] = {}
    for thing, bin_, n in merged.prediction_bins:
        predictions.setdefault(thing, {})[bin_] = n
    latency: dict[str, dict[int, int]] = {}
    for thing, bucket, n in merged.latency:
        latency.setdefault(thing, {})[bucket] = n
    devices: list[Device] = []
    unknown: set[str] = set()
    names: list[str] = []
    for row in merged.devices:
        name = row["device"]
        profiles = [p for p in row["profiles"] or [] if p]
        reference = references.get(profiles[0]) if profiles else None
        if profiles and reference is None:
            unknown.update(profiles)
        buckets = _dense(latency.get(name, {}))
        scores: dict[str, float] = {}
        prediction_psi = None
        if reference is not None:
            names = list(reference.features)
            expected = reference.matrix()
            observed = np.zeros_like(expected)
            counted = merged.feature_bins.get(name)
            if counted is not None:
                rows, width = min(counted.shape[0], expected.shape[0]), min(counted.shape[1], expected.shape[1])
                observed[:rows, :width] = counted[:rows, :width]
            values = psis(observed, expected)  # one row a feature: bins past a feature's own are 0 on both sides
            scores = {
                feature: round(float(value), 4) for feature, value in zip(reference.features, values, strict=True)
            }
            observed = _dense(predictions.get(name, {}), len(reference.prediction))
            prediction_psi = round(psi(observed, np.asarray(reference.prediction)), 4)
        judged = reference is not None and row["records"] >= MIN_RECORDS
        drifting = sorted((f for f, s in scores.items() if s > SIGNIFICANT), key=lambda f: -scores[f]) if judged else []
        seconds = float(row["seconds"] or 0)
        devices.append(
            Device(
                name,
                int(row["messages"]),
                int(row["records"]),
                int(row["dropped"]),
                int(row["unsent"]),
                int(row["windows"]),
                merged.lost.get(name, 0),
                round(row["messages"] / seconds, 3) if seconds > 0 else 0.0,
                quantile_ms(buckets, 0.5),
                quantile_ms(buckets, 0.99),
                sorted(v for v in row["model_versions"] or [] if v),
                reference.sha256 if reference else None,
                scores,
                prediction_psi,
                drifting,
                judged,
            )
        )
    summed: dict[int, int] = {}
    for _, bucket, n in merged.latency:
        summed[bucket] = summed.get(bucket, 0) + n
    group_latency = _dense(summed)
    group = {
        "devices": len(devices),
        "messages": sum(d.messages for d in devices),
        "records": sum(d.records for d in devices),
        "dropped": sum(d.dropped for d in devices),
        "windows": sum(d.windows for d in devices),
        "lost_windows": sum(d.lost_windows for d in devices),
        "messages_per_s": round(sum(d.messages_per_s for d in devices), 3),
        "p50_ms": quantile_ms(group_latency, 0.5),
        "p99_ms": quantile_ms(group_latency, 0.99),
        "drifting": sum(1 for d in devices if d.drifting),
        "judged": sum(1 for d in devices if d.judged),
        "without_reference": sum(1 for d in devices if d.reference is None),
    }
    return Assessment(devices, group, sorted(unknown), names)


def _dense(counts: dict[int, int], length: int | None = None) -> np.ndarray:
    """Counts by 1-based index (SQL's ordinality) as an array from 0."""
    size = length if length is not None else max(counts, default=0)
    array = np.zeros(size)
    for index, n in counts.items():
        if 1 <= index <= size:
            array[index - 1] = n
    return array
