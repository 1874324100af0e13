"""Models for tests that need a second one: trained in a second on the seed data, different from the reference."""

from __future__ import annotations

from pathlib import Path

import xgboost as xgb
from subscriber_training import wine


def small_model(folder: Path, seed: Path, name: str = "small.json", rounds: int = 20) -> Path:
    data = wine.load_csv(seed / "wine_concat.csv")
    params = {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.3, "seed": 1, "nthread": 2}
    booster = xgb.train(params, xgb.DMatrix(data.features, label=data.quality, feature_names=wine.FEATURES), rounds)
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(folder / name)
    return folder / name
