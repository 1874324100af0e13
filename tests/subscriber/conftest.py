from __future__ import annotations

from pathlib import Path

import pytest
from subscriber_training import wine

from tests.conftest import SEED


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, seed: Path) -> Path:
    """A model trained by our own training code on the seed data, its search included (about 40 s on 2 cores)."""
    out = tmp_path_factory.mktemp("model")
    wine.run(wine.load_csv(SEED / "wine_concat.csv"), out, seed / "xgboost_wine_quality.json")
    return out
