"""Training is seeded, uses the reference's encoding, and beats the trivial predictor on held-out rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from subscriber.inference import Model
from subscriber_training import wine

from tests.conftest import SEED


def test_model_and_metrics_are_written(trained: Path) -> None:
    report = json.loads((trained / "metrics.json").read_text())
    model = Model(trained / "model.json")
    assert model.features == wine.FEATURES
    assert report["rows"]["train"] + report["rows"]["test"] == 5320
    assert set(report["held_out"]) == {"rmse", "mae"}
    assert set(report["reference"]["held_out"]) == {"rmse", "mae"}


def test_model_beats_predicting_the_mean(trained: Path) -> None:
    _, test = wine.split(wine.load_csv(SEED / "wine_concat.csv"))
    trivial = wine.metrics(np.full(len(test.quality), test.quality.mean()), test.quality)
    ours = json.loads((trained / "metrics.json").read_text())["held_out"]
    assert ours["rmse"] < trivial["rmse"] * 0.9


def test_split_is_seeded() -> None:
    data = wine.load_csv(SEED / "wine_concat.csv")
    first, second = wine.split(data)[1], wine.split(data)[1]
    assert np.array_equal(first.features, second.features)


def test_bad_data_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "wine.csv"
    bad.write_text(",".join([*wine.MEASUREMENTS, "quality", "color"]) + "\n" + ",".join(["1"] * 12) + ",rose\n")
    with pytest.raises(wine.DataError, match=f"{bad} line 2: color is 'rose'"):
        wine.load_csv(bad)
    with pytest.raises(wine.DataError, match="cannot read"):
        wine.load_csv(tmp_path / "absent.csv")
