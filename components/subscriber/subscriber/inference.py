"""Wine-quality inference: the reference's Lambda-style contract, without a DataFrame per message.

`handler(event, context)` takes `{"body": "<JSON list of records>", "isBase64Encoded": bool}` and returns
`{"statusCode": 200, "body": [predictions]}`. Records are JSON objects whose keys are the model's feature
names (any order); the feature list comes from the model file itself.

`python -m subscriber.inference --model PATH` reads one event on stdin and prints the result as JSON.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import math
import os
import struct
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from subscriber import admission
from subscriber.native import Booster, XGBoostError

MODEL_PATH_ENV = "MODEL_PATH"


class ModelError(RuntimeError):
    """The model file cannot be used; the message names it."""


class InvalidInput(ValueError):
    """A message that cannot be scored. `reason` is a stable code for machines, the message is for people;
    `feature` names the model feature whose value was missing or not a finite number, where that was the reason."""

    def __init__(self, reason: str, message: str, feature: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.feature = feature


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 256 * 1024
    max_records: int = 1000


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32, as NumPy prints it (6.573914, not 6.5739140510)."""
    target = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if struct.pack("<f", candidate) == target:
                return candidate
        except OverflowError:  # near the float32 maximum a shorter decimal can round out of range
            continue
    return value


def _json_document(raw: bytes) -> bool:
    """XGBoost's JSON format (a UBJ model starts with `{` too, then a key's length marker, never a quote)."""
    opened = raw.lstrip()
    return opened[:1] == b"{" and opened[1:].lstrip()[:1] in (b'"', b"}")


class Model:
    """A booster plus the name-to-column mapping its records need."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist (set {MODEL_PATH_ENV} to an XGBoost JSON/UBJ model)")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"model file {path} cannot be read: {exc}") from exc
        if _json_document(raw):
            # Checked before libxgboost reads a byte of it: its loader trusts fields such as a node's parent.
            try:
                admission.check(json.loads(raw))
            except ValueError as exc:  # admission.Inadmissible and json's errors alike
                raise ModelError(f"model file {path} is refused: {exc}") from None
        try:
            self._booster = Booster(raw)
        except XGBoostError as exc:
            raise ModelError(f"model file {path} cannot be loaded: {exc}") from exc
        self.path = path
        self.features = self._booster.feature_names
        if not self.features:
            raise ModelError(f"model file {path} has no feature names: records are matched to features by name")
        try:
            admission.check(json.loads(self._booster.saved_json()))
        except (XGBoostError, ValueError) as exc:  # admission.Inadmissible is a ValueError
            raise ModelError(f"model file {path} is refused: {exc}") from None

    def rows(self, records: list[Any]) -> list[list[float]]:
        rows = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidInput("not_an_object", f"record {index} is {type(record).__name__}, not an object")
            row = []
            for name in self.features:
                try:
                    value = record[name]
                except KeyError:
                    raise InvalidInput("missing_feature", f"record {index} has no feature {name!r}", name) from None
                # bool is an int in Python, but `true` is not a measurement.
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise InvalidInput(
                        "not_numeric", f"record {index} feature {name!r} is {value!r}, not a finite number", name
                    )
                row.append(value)
            rows.append(row)
        return rows

    def predict(self, records: list[Any]) -> list[float | list[float]]:
        return self.predict_rows(self.rows(records))

    def predict_rows(self, rows: list[list[float]]) -> list[float | list[float]]:
        """Rows that `rows` made, of any number of messages: one libxgboost call for all of them."""
        raw = self._booster.predict(rows)
        return [shortest_float32(v) if isinstance(v, float) else [shortest_float32(x) for x in v] for v in raw]


def records_from_event(event: Any, limits: Limits = Limits()) -> list[Any]:
    """The records list inside a reference-format event, or InvalidInput saying what is wrong with it."""
    if not isinstance(event, dict):
        raise InvalidInput("bad_event", f"the event is {type(event).__name__}, not an object with a 'body'")
    if "body" not in event:
        raise InvalidInput("bad_event", "the event has no 'body'")
    body = event["body"]
    if isinstance(body, list):  # a JSON message may carry the records already parsed
        records = body
    elif isinstance(body, str):
        if len(body) > limits.max_body_bytes:
            raise InvalidInput("too_large", f"the body is {len(body)} bytes, over the {limits.max_body_bytes} limit")
        text: str | bytes = body
        if event.get("isBase64Encoded") is True:
            try:
                text = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("bad_base64", "isBase64Encoded is true but the body is not valid base64") from None
        try:
            records = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput("invalid_json", f"the body is not valid JSON: {exc}") from None
    else:
        raise InvalidInput("bad_event", f"the body is {type(body).__name__}, not a JSON string")
    if not isinstance(records, list):
        raise InvalidInput("not_a_list", f"the body holds {type(records).__name__}, not a list of records")
    if not records:
        raise InvalidInput("empty", "the body holds an empty list of records")
    if len(records) > limits.max_records:
        raise InvalidInput("too_large", f"{len(records)} records, over the {limits.max_records} limit")
    return records


@cache
def default_model() -> Model:
    path = os.environ.get(MODEL_PATH_ENV)
    if not path:
        raise ModelError(f"{MODEL_PATH_ENV} is not set: it must name the model file")
    return Model(Path(path))


def handler(event: Any, context: Any, model: Model | None = None) -> dict[str, Any]:
    """The reference's entry point. Bad input gives statusCode 400 and `{"error", "message"}` in the body."""
    try:
        predictions = (model or default_model()).predict(records_from_event(event))
    except InvalidInput as exc:
        return {"statusCode": 400, "body": {"error": exc.reason, "message": str(exc)}}
    return {"statusCode": 200, "body": predictions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m subscriber.inference",
        description="Score one event read from stdin: "
        '{"body": "<JSON list of records>", "isBase64Encoded": false}. Prints the result JSON.',
        epilog="Exit codes: 0 scored, 1 the event was rejected (status 400), 2 bad usage or unusable model.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=os.environ.get(MODEL_PATH_ENV),
        help=f"XGBoost JSON/UBJ model file (default: ${MODEL_PATH_ENV})",
    )
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error(f"--model is required when {MODEL_PATH_ENV} is not set")
    try:
        model = Model(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    raw = sys.stdin.read()
    try:
        event = json.loads(raw)
    except json.JSONDecodeError as exc:
        print(f"error: stdin is not a JSON event: {exc}", file=sys.stderr)
        return 1
    result = handler(event, None, model)
    print(json.dumps(result))
    return 0 if result["statusCode"] == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
