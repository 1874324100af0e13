"""The reference profile of a model brought from elsewhere:
`python -m subscriber_training.reference --model M --data CSV --out P` (`make deploy PROFILE_DATA=<csv>`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import xgboost as xgb

from subscriber_training import profile, wine


def rows_from_csv(path: Path, names: list[str]) -> np.ndarray:
    """The model's features from a CSV: columns named after them, or the wine data set's own layout (its `color`
    column one-hot encoded as training does)."""
    try:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
    except OSError as exc:
        raise wine.DataError(f"cannot read {path}: {exc}") from None
    if set(names) <= set(header):
        with path.open(newline="") as handle:
            try:
                table = [[float(row[name]) for name in names] for row in csv.DictReader(handle)]
            except ValueError as exc:
                raise wine.DataError(f"{path}: {exc}") from None
        if not table:
            raise wine.DataError(f"{path} has no rows")
        return np.asarray(table, dtype=np.float32)
    if set(names) <= set(wine.FEATURES) and {*wine.MEASUREMENTS, "color", "quality"} <= set(header):
        data = wine.load_csv(path)
        return data.features[:, [wine.FEATURES.index(name) for name in names]]
    missing = sorted(set(names) - set(header))
    raise wine.DataError(f"{path} has no column for the model's features {missing}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subscriber_training.reference", description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="the XGBoost model (JSON or UBJ)")
    parser.add_argument("--data", type=Path, required=True, help="CSV of the rows the model learnt from")
    parser.add_argument(
        "--out", type=Path, required=True, help="where to write the profile (JSON; - for standard output)"
    )
    args = parser.parse_args(argv)
    try:
        booster = xgb.Booster(model_file=str(args.model))
        names = list(booster.feature_names or [])
        if not names:
            raise wine.DataError(f"model {args.model} has no feature names")
        rows = rows_from_csv(args.data, names)
    except (wine.DataError, xgb.core.XGBoostError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    data_sha256 = hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()
    model_sha256 = hashlib.sha256(args.model.read_bytes()).hexdigest()
    made = profile.make(booster, rows, model_sha256, data_sha256)
    if str(args.out) == "-":
        print(json.dumps(made))
    else:
        profile.write(made, args.out)
    print(
        f"profile of {args.model}: {len(names)} features and the prediction, from {len(rows)} rows of {args.data}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
