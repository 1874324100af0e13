"""Model admission (subscriber.admission): a model that would make libxgboost read outside the model or the row,
or score records shifted by a column, is refused by name before anything is scored, whatever its file format; every
booster and objective the subscriber accepts scores exactly as XGBoost's own `predict` does. The models here are
built as an attacker would, by editing a real model's JSON; the xgboost package stands for "XGBoost's own"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from subscriber.inference import Model, ModelError

FEATURES = ["a", "b", "c"]


def _edited(seed: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None], suffix: str = ".json") -> Path:
    document = json.loads((seed / "xgboost_wine_quality.json").read_text())
    edit(document)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    if suffix == ".ubj":  # the same model in the binary format: admission reads what libxgboost loaded
        converted = tmp_path / "edited.ubj"
        xgb.Booster(model_file=str(path)).save_model(str(converted))
        return converted
    return path


def _tree(document: dict[str, Any], at: int = 0) -> dict[str, Any]:
    tree: dict[str, Any] = document["learner"]["gradient_booster"]["model"]["trees"][at]
    return tree


def _fewer_names(document: dict[str, Any]) -> None:
    learner = document["learner"]
    learner["feature_names"], learner["feature_types"] = learner["feature_names"][:-1], learner["feature_types"][:-1]


def _child_outside(document: dict[str, Any]) -> None:
    _tree(document)["left_children"][0] = 99_999


def _child_loop(document: dict[str, Any]) -> None:
    _tree(document)["right_children"][0] = 0  # the root its own child: a walk that never ends


def _split_outside(document: dict[str, Any]) -> None:
    _tree(document)["split_indices"][0] = 500


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_fewer_names, "feature_names: it names 12 features but scores rows of 13"),
        (_child_outside, "tree 0: left_children[0] is 99999, outside the tree"),
        (_child_loop, "tree 0: right_children[0] is 0, outside the tree or not after its parent"),
        (_split_outside, "tree 0: split_indices[0] is 500: node 0 splits on a feature past the model's 13"),
    ],
)
def test_a_model_that_would_mislead_or_crash_libxgboost_is_refused(
    seed: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None], reason: str, suffix: str
) -> None:
    path = _edited(seed, tmp_path, edit, suffix)
    with pytest.raises(ModelError, match="is refused: ") as refused:
        Model(path)
    assert reason in str(refused.value) and str(path) in str(refused.value)


def test_a_parent_outside_the_tree_is_refused_before_libxgboost_loads_it(seed: Path, tmp_path: Path) -> None:
    """The review's finding: one out-of-range `parents` entry makes libxgboost's loader itself segfault (exit 139).
    The JSON is checked before libxgboost reads a byte of it, so the check refuses it, naming the field."""

    def parent_outside(document: dict[str, Any]) -> None:
        _tree(document)["parents"][3] = 10_000_000

    path = _edited(seed, tmp_path, parent_outside)
    with pytest.raises(ModelError, match=r"is refused: tree 0: parents\[3\] is 10000000, outside the tree"):
        Model(path)


def test_a_linear_booster_is_refused_with_the_reason(tmp_path: Path) -> None:
    """libxgboost's in-place prediction (XGBoosterPredictFromDense) does not serve gblinear: it would load and then
    fail on every message."""
    x = np.random.RandomState(0).rand(40, 3)
    booster = xgb.train({"booster": "gblinear", "nthread": 1}, xgb.DMatrix(x, x.sum(1), feature_names=FEATURES), 3)
    booster.save_model(tmp_path / "linear.json")
    with pytest.raises(ModelError, match=r"a gblinear model: .* train it with booster gbtree or dart"):
        Model(tmp_path / "linear.json")


@pytest.mark.parametrize("booster", ["gbtree", "dart"])
@pytest.mark.parametrize(
    ("objective", "labels", "extra"),
    [
        ("reg:squarederror", lambda x: x.sum(1), {}),
        ("reg:absoluteerror", lambda x: x.sum(1), {}),
        ("count:poisson", lambda x: np.floor(x.sum(1) * 3), {}),
        ("binary:logistic", lambda x: (x.sum(1) > 1.5).astype(float), {}),
        ("multi:softprob", lambda x: np.floor(x[:, 0] * 3), {"num_class": 3}),
        ("multi:softmax", lambda x: np.floor(x[:, 0] * 3), {"num_class": 3}),
    ],
)
def test_every_admitted_booster_and_objective_scores_as_xgboost_does(
    tmp_path: Path, booster: str, objective: str, labels: Callable[[Any], Any], extra: dict[str, Any]
) -> None:
    x = np.random.RandomState(1).rand(60, 3).astype(np.float32)
    params = {"booster": booster, "objective": objective, "nthread": 1, "max_depth": 3, **extra}
    trained = xgb.train(params, xgb.DMatrix(x, labels(x), feature_names=FEATURES), 6)
    trained.save_model(tmp_path / "model.json")
    ours = Model(tmp_path / "model.json")
    records = [dict(zip(FEATURES, map(float, row), strict=True)) for row in x[:8]]
    expected = trained.predict(xgb.DMatrix(x[:8], feature_names=FEATURES))
    scored = np.asarray(ours.predict(records), dtype=np.float32)
    assert scored.shape == expected.shape
    assert np.allclose(scored, expected, rtol=1e-6, atol=1e-6)  # shortest_float32 prints, never changes, a float32
