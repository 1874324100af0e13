"""Shadow scoring: a challenger's predictions on the champion's records, and their running agreement."""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from subscriber import challenger
from subscriber.challenger import ChallengerProcess
from subscriber.inference import Model
from subscriber.shadow import Agreement, Backlog, Shadow, log_line

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


def test_the_challenger_in_its_own_process_scores_as_it_would_in_ours(
    seed: Path, tmp_path: Path, samples: list[Any]
) -> None:
    path = small_model(tmp_path, seed)
    process = ChallengerProcess(path)
    try:
        assert process.predict(samples) == Model(path).predict(samples)
        assert process.predict(samples) == Model(path).predict(samples) and process.starts == 1
        # At the lowest priority a process may take: the champion's cores are its own first (proc(5): field 19).
        assert process._process is not None
        stat = Path(f"/proc/{process._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[16]) == challenger.NICENESS == 19
    finally:
        process.close()


# A worker that answers as subscriber.challenger does, but crashes the way libxgboost can (SIGSEGV) on a record that
# says so, and hangs on one that says so: what no real model here does on purpose (a stand-in, said so).
FRAGILE = """
import ctypes, json, sys, time
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    records = json.loads(line)
    if records == ["crash"]:
        ctypes.string_at(0)
    if records == ["hang"]:
        time.sleep(60)  # the hang under test (the stand-in's own code), not a wait of the test
    print(json.dumps({"predictions": [1.0] * len(records)}), flush=True)
"""


def test_a_challenger_that_crashes_or_hangs_is_counted_and_started_again(tmp_path: Path) -> None:
    """Its crash and its hang cost one shadow record each (with the reason and the count), never the caller: the
    next message is scored by a new worker."""
    process = ChallengerProcess(tmp_path / "model.json", timeout=3.0, command=[sys.executable, "-c", FRAGILE])
    shadow = Shadow(process, "1.0.0")
    try:
        assert shadow.score("t", [{}], [5.0])["challenger"] == [1.0]
        crashed = shadow.score("t", ["crash"], [5.0])
        assert "it died, exit status -11" in crashed["error"] and crashed["failures"] == 1
        assert shadow.score("t", [{}], [5.0])["challenger"] == [1.0] and process.starts == 2
        hung = shadow.score("t", ["hang"], [5.0])
        assert "no answer within 3s" in hung["error"] and hung["failures"] == 2
        after = shadow.score("t", [{}, {}], [5.0, 6.0])
        assert after["challenger"] == [1.0, 1.0] and process.starts == 3
        assert after["agreement"]["count"] == 4  # the predictions of the messages both scored: 1 + 1 + 2
    finally:
        process.close()


def test_a_challenger_that_falls_behind_has_its_work_dropped_and_counted() -> None:
    """Past its limit the backlog drops new shadow work instead of holding the champion's thread."""
    release = threading.Event()
    done: list[Any] = []

    class Slow:
        def predict(self, records: list[Any]) -> list[float | list[float]]:
            release.wait(10)
            return [0.0] * len(records)

    shadow = Shadow(Slow(), "1.0.0")
    backlog = Backlog(shadow, lambda s, items: done.extend(s.score_batch([("t", i, [0.0]) for i in items])), limit=2)
    offered = [backlog.offer([{}]) for _ in range(6)]  # one taken at once, two wait, the rest are dropped
    release.set()
    backlog.join()
    assert offered.count(False) == shadow.dropped >= 3
    assert len(done) == offered.count(True) and done[-1]["dropped"] == shadow.dropped
