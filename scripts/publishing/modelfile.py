"""The model file, checked the way the device will use it before any image is built or pushed.

The check runs the subscriber's own scoring command (`python -m subscriber.inference`, the checkout's code) on the
records the publisher sends: a file XGBoost cannot load, a model the subscriber's admission refuses (names that do
not match its features, trees that point outside themselves, a booster it cannot score), one that needs a feature
the publisher's records lack, or one whose predictions are not finite stops the run here, not as a rolled-back
deployment on every device. It runs as the image runs it (confined.py): without the caller's credentials and, as
root, as an unprivileged user with no network.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.errors import ToolError
from scripts.product import REPO
from scripts.publishing import artifacts, confined

SUBSCRIBER_SOURCE = REPO / "components" / "subscriber"
PUBLISHER_SAMPLES = REPO / "components" / "publisher" / "publisher" / "samples.json"
SUFFIXES = (".json", ".ubj")  # the formats libxgboost loads by name
TIMEOUT = 120.0


class ModelFileError(ToolError):
    """The model cannot serve the publisher's records; the message says why and names the file."""


@dataclass(frozen=True)
class Checked:
    predictions: list[object]  # for the publisher's bundled records
    sha256: str  # of the very bytes that were checked: what may be uploaded


def check(model: Path) -> list[object]:
    """The model's predictions for the publisher's bundled records, or ModelFileError."""
    return checked(model).predictions


def checked(model: Path) -> Checked:
    """The model read once, its bytes hashed and checked from a private copy: the file may change afterwards (or
    be swapped by whoever can write it), and the upload compares what it sends with `sha256`."""
    if not model.is_file():
        raise ModelFileError(f"model file {model} does not exist: run `make model`, or pass MODEL_PATH=<file>")
    if model.suffix not in SUFFIXES:
        raise ModelFileError(f"model file {model} must be XGBoost JSON (.json) or UBJ (.ubj)")
    data = model.read_bytes()
    with tempfile.TemporaryDirectory(prefix="edgeml-model-") as folder:  # 0700: only this user reads the copy
        copy = Path(folder) / f"model{model.suffix}"
        copy.write_bytes(data)
        try:
            predictions = _scored(copy)
        except ModelFileError as exc:
            raise ModelFileError(str(exc).replace(str(copy), str(model))) from None
    return Checked(predictions, hashlib.sha256(data).hexdigest())


def _scored(model: Path) -> list[object]:
    event = {"body": PUBLISHER_SAMPLES.read_text(), "isBase64Encoded": False}
    scoring = confined.Module("subscriber.inference", SUBSCRIBER_SOURCE, {"model": model})
    try:
        finished = confined.run(
            scoring, lambda at: ["--model", str(at["model"])], json.dumps(event), TIMEOUT, os.environ
        )
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"model file {model}: scoring the publisher's records took over {TIMEOUT:.0f}s") from None
    done = finished.process
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        result = None  # the command failed before scoring: its reason is on stderr
    if isinstance(result, dict) and done.returncode == 0:
        predictions: list[object] = result["body"]
        values = [v for p in predictions for v in (p if isinstance(p, list) else [p])]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ModelFileError(f"model file {model} predicts non-finite values for the publisher's records: {values}")
        return predictions
    if isinstance(result, dict) and done.returncode == 1:
        raise ModelFileError(
            f"model file {model} cannot score the publisher's records ({PUBLISHER_SAMPLES.name}): "
            f"{finished.told(str(result['body']['message']))}"
        )
    # The subscriber says why on one `error: ` line (naming the file); anything else is a crash: its last line.
    lines = finished.told(done.stderr).strip().splitlines() or [f"exit status {done.returncode}"]
    said = next((line.removeprefix("error: ") for line in lines if line.startswith("error: ")), None)
    raise ModelFileError(said or f"model file {model} is unusable: {lines[-1]}")


def metrics(model: Path) -> dict[str, object]:
    """What `make model` measured for this very file (its `metrics.json` beside it, matched by the model's SHA-256):
    held-out RMSE and MAE, the rows, the training data's hash. Empty when nothing was recorded for it. Only numbers
    and a hex digest are taken as measurements; a file that holds anything else is reported as not used, its
    offending value kept as plain text (`unusable`), never as a measurement."""
    try:
        report = json.loads((model.parent / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(report, dict) or report.get("model_sha256") != artifacts.sha256(model):
        return {}
    held_out, rows = report.get("held_out"), report.get("rows")
    found = {
        "rmse": held_out.get("rmse") if isinstance(held_out, dict) else None,
        "mae": held_out.get("mae") if isinstance(held_out, dict) else None,
        "rows": rows.get("test") if isinstance(rows, dict) else None,
        "data_sha256": report.get("data_sha256"),
    }
    wrong = next((key for key, value in found.items() if not _measurement(key, value)), None)
    if wrong is not None:
        return {"unusable": f"{wrong} is not {MEASUREMENTS[wrong][1]}: {str(found[wrong])[:UNUSABLE_CHARS]}"}
    return found


UNUSABLE_CHARS = 200
MEASUREMENTS = {
    "rmse": (lambda v: _number(v) and v >= 0, "a non-negative number"),
    "mae": (lambda v: _number(v) and v >= 0, "a non-negative number"),
    "rows": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a count"),
    "data_sha256": (lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) is not None, "a sha256 digest"),
}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _measurement(key: str, value: object) -> bool:
    valid: Callable[[Any], bool] = MEASUREMENTS[key][0]
    return valid(value)


def summary(measured: dict[str, object]) -> str:
    if not measured:
        return "no metrics recorded for it (`make model` writes them beside the model it trains)"
    if "unusable" in measured:
        return f"its metrics.json not used: {measured['unusable']}"
    return (
        f"RMSE {measured['rmse']}, MAE {measured['mae']} on {measured['rows']} held-out rows "
        f"of data sha256 {str(measured['data_sha256'])[:12]}"
    )


PROFILE = "profile.json"  # `make model` writes it beside model.json


def profile(model: Path, data: Path | None, folder: Path) -> Path | None:
    """The champion's reference profile: made from `data` (PROFILE_DATA) into `folder`, else the one `make model`
    wrote beside the model (matched by the model's SHA-256, as its metrics are), else None: the devices' telemetry
    then says "no reference". Either way checked as the device will read it, before anything is built."""
    sha256 = artifacts.sha256(model)
    if data is not None:
        made = folder / f"profile-{sha256[:12]}-{artifacts.sha256(data)[:12]}.json"
        if not made.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            made.write_text(_made_profile(model, data))
        found: Path | None = made
    else:
        beside = model.parent / PROFILE
        try:
            found = beside if json.loads(beside.read_text()).get("model_sha256") == sha256 else None
        except (OSError, ValueError, AttributeError):
            found = None
    if found is not None:
        _check_profile(model, found, sha256, artifacts.sha256(found))
    return found


def _made_profile(model: Path, data: Path) -> str:
    making = confined.Module("subscriber_training.reference", SUBSCRIBER_SOURCE, {"model": model, "data": data})
    try:
        finished = confined.run(
            making,
            lambda at: ["--model", str(at["model"]), "--data", str(at["data"]), "--out", "-"],
            "",
            TIMEOUT,
            os.environ,
        )
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"profiling {model} on {data} took over {TIMEOUT:.0f}s") from None
    if finished.process.returncode != 0:
        lines = finished.told(finished.process.stderr).strip().splitlines() or ["no reason given"]
        raise ModelFileError(f"no profile of {model} from {data}: {lines[-1].removeprefix('error: ')}")
    return finished.process.stdout


@functools.cache
def _check_profile(model: Path, found: Path, model_sha256: str, profile_sha256: str) -> None:
    """Once a run for these bytes (the digests are the key): a deploy asks before building and again when it
    publishes. A refusal raises, and is never remembered."""
    checking = confined.Module("subscriber.profile", SUBSCRIBER_SOURCE, {"model": model, "profile": found})
    finished = confined.run(
        checking, lambda at: ["--model", str(at["model"]), str(at["profile"])], "", TIMEOUT, os.environ
    )
    if finished.process.returncode != 0:
        lines = finished.told(finished.process.stderr).strip().splitlines() or ["no reason given"]
        raise ModelFileError(f"the profile is refused for model {model}: {lines[-1].removeprefix('error: ')}")
