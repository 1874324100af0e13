"""The reference profile of a model.

For every feature the model reads, fixed bin edges from the rows it learnt from (the minimum, the deciles, and just
above the maximum, duplicates merged) and the rows' share in each bin, under- and overflow included; the same for
the model's predictions on those rows. The device bins what it sees with these edges (subscriber.profile), and
`make monitor` compares the counts with these shares. `make model` writes one for the training rows beside the
model; for a model brought from elsewhere, `PROFILE_DATA=<csv>` makes one from the rows given
(subscriber_training.reference).

Values are taken as the decimals the records carry (7.4, not float32's 7.400000095), so a record holding a training
row's value lands in that row's bin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

SCHEMA = "edgeml.profile/1"
QUANTILES = np.linspace(0.1, 0.9, 9)


def as_decimals(values: np.ndarray) -> np.ndarray:
    """float32 values as the shortest decimals that read back as them, in float64."""
    return np.asarray(values, dtype=np.float32).astype(str).astype(np.float64)


def histogram(values: np.ndarray) -> dict[str, Any]:
    """Edges, shares, and the mean and standard deviation (what a drift of "one standard deviation" means)."""
    values = as_decimals(values)
    inner = np.quantile(values, QUANTILES)
    edges = np.unique(np.concatenate([[values.min()], inner, [np.nextafter(values.max(), np.inf)]]))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return {
        "edges": [float(e) for e in edges],
        "shares": [round(float(c) / len(values), 6) for c in counts],
        "mean": round(float(values.mean()), 6),
        "std": round(float(values.std()), 6),
    }


def make(booster: xgb.Booster, rows: np.ndarray, model_sha256: str, data_sha256: str) -> dict[str, Any]:
    """`rows`: one column per feature of the booster, in its order."""
    names = booster.feature_names or []
    predictions = np.asarray(booster.inplace_predict(rows), dtype=np.float32).reshape(-1)
    return {
        "schema": SCHEMA,
        "model_sha256": model_sha256,
        "data_sha256": data_sha256,
        "rows": len(rows),
        "features": {name: histogram(rows[:, index]) for index, name in enumerate(names)},
        "prediction": histogram(predictions),
    }


def write(profile: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(profile, indent=1) + "\n")
