"""The model file is checked with the subscriber's own scoring command on the publisher's records before any image
is built: the real libxgboost loads every model here, nothing is mocked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from scripts import pipeline
from scripts.publishing import artifacts, confined, modelfile
from tests.support.outputs import stack_outputs


def test_the_reference_model_scores_the_publishers_records(seed: Path) -> None:
    assert modelfile.check(seed / "xgboost_wine_quality.json") == [6.573914, 4.869721]


def renamed_feature(seed: Path, folder: Path) -> Path:
    document = json.loads((seed / "xgboost_wine_quality.json").read_text())
    document["learner"]["feature_names"][0] = "grape variety"
    path = folder / "renamed.json"
    path.write_text(json.dumps(document))
    return path


def nan_leaves(seed: Path, folder: Path) -> Path:
    """The reference model with NaN in its first tree: libxgboost would load it, and predict NaN."""
    document = json.loads((seed / "xgboost_wine_quality.json").read_text())
    tree = document["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["base_weights"] = [float("nan")] * len(tree["base_weights"])
    tree["split_conditions"] = [float("nan")] * len(tree["split_conditions"])
    path = folder / "nan.json"
    path.write_text(json.dumps(document))
    return path


def fewer_names(seed: Path, folder: Path) -> Path:
    """12 names for 13 features: libxgboost loads it and scores every record shifted by a column."""
    document = json.loads((seed / "xgboost_wine_quality.json").read_text())
    document["learner"]["feature_names"] = document["learner"]["feature_names"][:12]
    document["learner"]["feature_types"] = document["learner"]["feature_types"][:12]
    path = folder / "fewer-names.json"
    path.write_text(json.dumps(document))
    return path


def child_outside(seed: Path, folder: Path) -> Path:
    """A tree whose root points past its end: libxgboost loads it, and segfaults scoring it."""
    document = json.loads((seed / "xgboost_wine_quality.json").read_text())
    document["learner"]["gradient_booster"]["model"]["trees"][3]["right_children"][0] = 1 << 30
    path = folder / "child-outside.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("make_model", "reason"),
    [
        (fewer_names, "is refused: feature_names: it names 12 features but scores rows of 13"),
        (child_outside, "is refused: tree 3: right_children[0] is 1073741824, outside the tree"),
        (lambda seed, folder: folder / "absent.json", "does not exist: run `make model`"),
        (lambda seed, folder: (folder / "model.pkl").write_bytes(b"x") and folder / "model.pkl", "must be XGBoost"),
        (
            lambda seed, folder: (folder / "empty.json").write_text("{}") and folder / "empty.json",
            "is refused: learner is not an object",
        ),
        (renamed_feature, "has no feature 'grape variety'"),
        (nan_leaves, "is refused: tree 0: split_conditions[0] is nan, not finite"),
    ],
    ids=[
        "fewer-names",
        "child-outside",
        "missing",
        "not-an-xgboost-format",
        "unloadable",
        "feature-the-publisher-lacks",
        "non-finite",
    ],
)
def test_a_model_the_device_could_not_use_is_refused_with_its_reason(
    seed: Path, tmp_path: Path, make_model: Any, reason: str
) -> None:
    path = make_model(seed, tmp_path)
    with pytest.raises(modelfile.ModelFileError, match=r"model file .*") as refused:
        modelfile.check(path)
    assert reason in str(refused.value) and str(path) in str(refused.value)
    assert "\n" not in str(refused.value)  # one line, whatever libxgboost said


def test_the_scoring_command_gets_no_credentials() -> None:
    """A model file is input from anywhere and libxgboost parses it: the command that scores it is not handed the
    caller's AWS keys or anything else but what Python needs."""
    given = {"PATH": "/usr/bin", "HOME": "/home/u", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "X": "y"}
    assert set(confined.environment(given, [Path("/src")])) == {"PATH", "PYTHONPATH"}


def test_a_model_under_a_folder_only_its_owner_may_enter_is_checked(seed: Path, tmp_path: Path) -> None:
    """As CI clones into a 0700 temporary folder: the confined check reads a copy, and its reasons name the user's
    file, not the copy."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    model = private / "model.json"
    model.write_bytes((seed / "xgboost_wine_quality.json").read_bytes())
    model.chmod(0o600)
    assert modelfile.check(model) == [6.573914, 4.869721]
    renamed = renamed_feature(seed, private)
    with pytest.raises(modelfile.ModelFileError) as refused:
        modelfile.check(renamed)
    assert str(renamed) in str(refused.value) and "edgeml-confined-" not in str(refused.value)


class UntouchableEngine:
    """Stands in for the Docker client only to prove it is never reached: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the engine was used ({name}) although the model is unusable")


def test_an_unusable_model_stops_the_deploy_before_anything_is_built_or_sent(tmp_path: Path) -> None:
    """Nothing reaches the engine, S3, ECR or Greengrass: the clients are stand-ins that fail on any use."""
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    untouchable = UntouchableEngine()
    clients = pipeline.Clients(untouchable, untouchable, untouchable, untouchable, cast(Any, untouchable))
    outputs = stack_outputs("eu-west-1", "123456789012", "r/edgeml", "bucket", "arn:aws:iot:x:1:thinggroup/g")
    with pytest.raises(modelfile.ModelFileError, match="is refused: learner is not an object"):
        pipeline.deploy(
            outputs, clients, pipeline.Options(broken), lambda message: None, lambda devices: None, tmp_path
        )


def test_metrics_are_read_only_for_the_model_they_were_measured_on(tmp_path: Path, seed: Path) -> None:
    model = tmp_path / "model.json"
    model.write_bytes((seed / "xgboost_wine_quality.json").read_bytes())
    report = {"model_sha256": artifacts.sha256(model), "held_out": {"rmse": 0.7, "mae": 0.5}, "rows": {"test": 9}}
    (tmp_path / "metrics.json").write_text(json.dumps({**report, "data_sha256": "ab" * 32}))
    assert modelfile.metrics(model) == {"rmse": 0.7, "mae": 0.5, "rows": 9, "data_sha256": "ab" * 32}
    assert "RMSE 0.7, MAE 0.5 on 9 held-out rows" in modelfile.summary(modelfile.metrics(model))
    model.write_bytes(model.read_bytes() + b" ")  # another model now: those metrics are not its
    assert modelfile.metrics(model) == {}
    assert "no metrics recorded" in modelfile.summary({})


def test_a_profile_is_found_for_its_own_model_made_from_profile_data_and_refused_for_other_features(
    tmp_path: Path, seed: Path
) -> None:
    """The reference profile, checked as the device reads it (`python -m subscriber.profile`, confined): beside the
    model only when it names the model's SHA-256; made from PROFILE_DATA by the training code; one whose features
    are not the model's stops the deploy before anything is built, naming them."""
    model = tmp_path / "model.json"
    model.write_bytes((seed / "xgboost_wine_quality.json").read_bytes())
    made = modelfile.profile(model, seed / "wine_concat.csv", tmp_path / "profiles")
    assert made is not None and made.parent == tmp_path / "profiles"
    document = json.loads(made.read_text())
    assert document["model_sha256"] == artifacts.sha256(model) and "alcohol" in document["features"]
    assert modelfile.profile(model, None, tmp_path / "profiles") is None  # nothing beside the model
    beside = tmp_path / modelfile.PROFILE
    beside.write_text(json.dumps({**document, "model_sha256": "0" * 64}))
    assert modelfile.profile(model, None, tmp_path / "profiles") is None  # another model's
    features = dict(document["features"])
    features["colour"] = features.pop("color_red")
    beside.write_text(json.dumps({**document, "features": features}))
    with pytest.raises(modelfile.ModelFileError, match=r"the profile is refused .* its features .* are not the model"):
        modelfile.profile(model, None, tmp_path / "profiles")
    rows = tmp_path / "rows.csv"
    rows.write_text("alcohol,pH\n9.5,3.2\n")
    with pytest.raises(modelfile.ModelFileError, match=r"no profile of .* has no column for the model.s features"):
        modelfile.profile(model, rows, tmp_path / "other-profiles")


def test_a_model_swapped_after_its_check_is_not_uploaded(seed: Path, tmp_path: Path) -> None:
    """The attack: whoever can write the model file replaces it between `make deploy`'s check and its upload. The
    check read the file once and hashed those bytes; the upload hashes the copy it sends and refuses a different
    one, naming the change, with nothing sent (the clients are stand-ins that fail on any use)."""
    model = tmp_path / "model.json"
    model.write_bytes((seed / "xgboost_wine_quality.json").read_bytes())
    found = modelfile.checked(model)
    assert found.predictions == [6.573914, 4.869721]
    model.write_text(model.read_text().replace('"base_score":"5E-1"', '"base_score":"9E-1"', 1) + " ")
    untouchable = UntouchableEngine()
    clients = pipeline.Clients(untouchable, untouchable, untouchable, untouchable, cast(Any, untouchable))
    outputs = stack_outputs("eu-west-1", "123456789012", "r/edgeml", "bucket", "arn:aws:iot:x:1:thinggroup/g")
    with pytest.raises(modelfile.ModelFileError, match=f"model file {model} changed after it was checked"):
        pipeline.publish_models(
            clients, outputs, model, None, tmp_path / "staged", lambda message: None, {model: found.sha256}
        )
    assert list((tmp_path / "staged").iterdir()) == []
