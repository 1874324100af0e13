"""`python -m subscriber check` (the image's `check`): the component's Install step, in its own image on the device,
before it runs.

It loads the model (MODEL_PATH) and the challenger beside it (EDGEML_CHALLENGER_FILE, if named) and scores a record
of every feature the model names, so that an image that cannot run on this CPU, a model file it cannot read or
load, or a model that scores nothing finite fails the installation: the nucleus then reports the component ERRORED
and the deployment does not count it RUNNING. Exit 0 when both serve, 2 otherwise, the reason on stderr.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from subscriber.app import CHALLENGER_FILE_ENV
from subscriber.inference import MODEL_PATH_ENV, Model, ModelError
from subscriber.native import XGBoostError


def _flat(predictions: list[float | list[float]]) -> list[float]:
    return [x for p in predictions for x in (p if isinstance(p, list) else [p])]


def check(path_of: dict[str, Path | None]) -> list[str]:
    """What is wrong with the models, by role; empty when each loads and scores a finite prediction."""
    problems = []
    for role, path in path_of.items():
        if path is None:
            continue
        try:
            model = Model(path)
            scores = _flat(model.predict([dict.fromkeys(model.features, 0.0)]))
        except (ModelError, XGBoostError) as exc:
            problems.append(f"{role}: {exc}")
            continue
        if not scores or not all(math.isfinite(score) for score in scores):
            problems.append(f"{role}: model file {path} scores {scores}, not finite")
    return problems


def main() -> int:
    named = os.environ.get(MODEL_PATH_ENV, "")
    if not named:
        print(f"error: {MODEL_PATH_ENV} is not set: it must name the model file", file=sys.stderr)
        return 2
    champion = Path(named)
    name = os.environ.get(CHALLENGER_FILE_ENV, "")
    problems = check({"champion": champion, "challenger": champion.parent / name if name else None})
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"models in {champion.parent} load and score on this device")
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
