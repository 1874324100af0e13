"""Shadow scoring: a challenger's predictions on the champion's records, and their running agreement."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from subscriber.inference import Model
from subscriber.shadow import Agreement, Shadow, log_line

from tests.support.models import small_model


def test_agreement_is_count_mean_and_largest_absolute_difference() -> None:
    agreement = Agreement()
    assert agreement.summary() == {"count": 0, "mean_abs_diff": 0.0, "max_abs_diff": 0.0}
    agreement.add([1.0, 2.0], [1.5, 2.0])
    agreement.add([[3.0, 4.0]], [[2.0, 4.25]])  # a multi-output model's, output by output
    assert agreement.summary() == {"count": 4, "mean_abs_diff": 0.4375, "max_abs_diff": 1.0}
    with pytest.raises(ValueError):
        agreement.add([1.0], [1.0, 2.0])  # two models that disagree on how many predictions: a bug, said loudly


def test_the_challenger_scores_the_champions_records(seed: Path, tmp_path: Path, samples: list[Any]) -> None:
    champion = Model(seed / "xgboost_wine_quality.json")
    challenger = Model(small_model(tmp_path, seed))
    shadow = Shadow(challenger, "1.0.3")
    first = shadow.score("local/topic", samples, champion.predict(samples))
    assert first["champion"] == [6.573914, 4.869721]
    assert first["challenger"] == challenger.predict(samples) != first["champion"]
    differences = [abs(a - b) for a, b in zip(first["champion"], first["challenger"], strict=True)]
    assert first["agreement"]["count"] == 2
    assert math.isclose(first["agreement"]["max_abs_diff"], max(differences), abs_tol=1e-6)
    second = shadow.score("local/topic", samples, champion.predict(samples))
    assert second["agreement"]["count"] == 4 and second["model_version"] == "1.0.3"
    assert log_line(second).startswith("shadow: count=4 mean_abs_diff=")
