"""The ctypes C-API path gives exactly what the xgboost Python package gives, for any input."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from subscriber.native import Booster

from tests.conftest import SEED

row = st.lists(st.floats(min_value=-1e4, max_value=1e4, width=32), min_size=13, max_size=13)


@functools.cache
def both(path: Path) -> tuple[Booster, xgb.Booster]:
    """The model loaded once by each way (loading is what costs, not predicting)."""
    return Booster(path.read_bytes()), xgb.Booster(model_file=str(path))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=20))
def test_native_matches_inplace_predict(rows: list[list[float]]) -> None:
    """The reference model (427 trees) on any rows, far outside the training range included."""
    ours, theirs = both(SEED / "xgboost_wine_quality.json")
    assert ours.predict(rows) == theirs.inplace_predict(np.asarray(rows, dtype=np.float32)).tolist()


def test_multi_output_models_give_one_list_per_row(tmp_path: Path) -> None:
    data = np.random.default_rng(1).random((30, 3))
    labels = np.arange(30) % 3
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3, "nthread": 1},
        xgb.DMatrix(data, label=labels, feature_names=["a", "b", "c"]),
        3,
    )
    path = tmp_path / "multi.json"
    booster.save_model(path)
    ours = Booster(path.read_bytes()).predict(data[:2].tolist())
    assert len(ours) == 2
    assert all(isinstance(item, list) and len(item) == 3 for item in ours)
    assert np.allclose(ours, booster.inplace_predict(data[:2].astype(np.float32)))
