"""The handler contract, the CLI, and the model loading errors."""

from __future__ import annotations

import base64
import json
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from subscriber.inference import (
    InvalidInput,
    Limits,
    Model,
    ModelError,
    handler,
    records_from_event,
    shortest_float32,
)

from tests.conftest import REPO

REFERENCE_RESULT = [6.573914, 4.869721]  # the reference device's log: `result: [6.573914 4.869721]`


def event(records: Any, as_base64: bool = False) -> dict[str, Any]:
    body = json.dumps(records)
    if as_base64:
        body = base64.b64encode(body.encode()).decode()
    return {"body": body, "isBase64Encoded": as_base64}


def test_reference_model_reproduces_the_reference_device(reference_model: Model, samples: list[Any]) -> None:
    assert handler(event(samples), None, reference_model) == {"statusCode": 200, "body": REFERENCE_RESULT}


def test_base64_bodies_are_decoded(reference_model: Model, samples: list[Any]) -> None:
    assert handler(event(samples, as_base64=True), None, reference_model)["body"] == REFERENCE_RESULT


def test_key_order_does_not_matter(reference_model: Model, samples: list[Any]) -> None:
    shuffled = []
    for record in samples:
        items = list(record.items())
        random.Random(7).shuffle(items)
        shuffled.append(dict(items))
    assert handler(event(shuffled), None, reference_model)["body"] == REFERENCE_RESULT


def test_extra_keys_are_ignored(reference_model: Model, samples: list[Any]) -> None:
    extra = [{**record, "sensor": "cellar-3", "quality": 9} for record in samples]
    assert handler(event(extra), None, reference_model)["body"] == REFERENCE_RESULT


def test_a_json_message_may_carry_the_records_parsed(reference_model: Model, samples: list[Any]) -> None:
    assert handler({"body": samples}, None, reference_model)["body"] == REFERENCE_RESULT


@pytest.mark.parametrize(
    ("bad_event", "reason"),
    [
        ("not an object", "bad_event"),
        ({"isBase64Encoded": False}, "bad_event"),
        ({"body": 42}, "bad_event"),
        ({"body": "{not json"}, "invalid_json"),
        ({"body": "!!!", "isBase64Encoded": True}, "bad_base64"),
        ({"body": base64.b64encode(b"\xff\xfe").decode(), "isBase64Encoded": True}, "invalid_json"),
        ({"body": "{}"}, "not_a_list"),
        ({"body": "[]"}, "empty"),
        ({"body": "[1, 2]"}, "not_an_object"),
        ({"body": '[{"alcohol": 9}]'}, "missing_feature"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(reference_model: Model, bad_event: Any, reason: str) -> None:
    result = handler(bad_event, None, reference_model)
    assert result["statusCode"] == 400
    assert result["body"]["error"] == reason
    assert result["body"]["message"]


@pytest.mark.parametrize("value", ["6.6", None, True, [1], float("nan"), float("inf")])
def test_non_numeric_features_are_rejected(reference_model: Model, samples: list[Any], value: Any) -> None:
    record = {**samples[0], "alcohol": value}
    with pytest.raises(InvalidInput) as caught:
        reference_model.predict([record])
    assert caught.value.reason == "not_numeric"
    assert "'alcohol'" in str(caught.value)


def test_limits_are_enforced(samples: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="over the 10 limit") as caught:
        records_from_event(event(samples * 10), Limits(max_body_bytes=10**6, max_records=10))
    assert caught.value.reason == "too_large"
    with pytest.raises(InvalidInput, match="bytes, over the 100 limit"):
        records_from_event(event(samples), Limits(max_body_bytes=100))


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=str(tmp_path / "absent.json")):
        Model(tmp_path / "absent.json")


def test_unreadable_model_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"learner": "no"}')
    with pytest.raises(ModelError, match=f"{broken} is refused: learner is not an object"):
        Model(broken)
    broken.write_text("{not json")
    with pytest.raises(ModelError, match=f"{broken} cannot be loaded"):
        Model(broken)


def test_a_model_without_feature_names_is_refused(tmp_path: Path) -> None:
    import numpy as np
    import xgboost as xgb

    booster = xgb.train({"nthread": 1}, xgb.DMatrix(np.zeros((4, 3)), label=np.arange(4.0)), 2)
    path = tmp_path / "anonymous.ubj"
    booster.save_model(path)
    with pytest.raises(ModelError, match="no feature names"):
        Model(path)


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
@example(3.4028234663852886e38)  # float32 max: shorter decimals overflow the float32 range
def test_shortest_float32_reads_back_as_the_same_float32(value: float) -> None:
    shortest = shortest_float32(value)
    assert struct.pack("<f", shortest) == struct.pack("<f", value)
    assert len(repr(shortest)) <= len(repr(value))


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "subscriber.inference", *args],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=REPO / "components" / "subscriber",
        check=False,
    )


def test_cli_scores_an_event_from_stdin(seed: Path, samples: list[Any]) -> None:
    done = run_cli("--model", str(seed / "xgboost_wine_quality.json"), stdin=json.dumps(event(samples)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"statusCode": 200, "body": REFERENCE_RESULT}


def test_cli_exit_codes(seed: Path, tmp_path: Path) -> None:
    model = str(seed / "xgboost_wine_quality.json")
    rejected = run_cli("--model", model, stdin='{"body": "[]"}')
    assert rejected.returncode == 1
    assert json.loads(rejected.stdout)["body"]["error"] == "empty"
    assert run_cli("--model", model, stdin="garbage").returncode == 1
    missing = run_cli("--model", str(tmp_path / "nope.json"), stdin="{}")
    assert missing.returncode == 2
    assert "nope.json does not exist" in missing.stderr
