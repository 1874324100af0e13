"""Nothing a user feeds the kit becomes recipe code: every template is filled on its parsed document, so a value
holding quotes, newlines, `{`, `:`, YAML anchors or a whole YAML document stays one string where the template put
it, and the recipe's keys are the template's. Written as an attacker would try it: the values are hostile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcloud.greengrassv2 import ControlPlane
from localcloud.restjson import ServiceError
from recipeformat.document import RecipeError, load_yaml
from scripts.publishing import artifacts, modelfile, models, recipes

INJECTION = 'x"\nLifecycle:\n  Run: "id > pwned"\nZ: "'  # the finding: a top-level Lifecycle, as text
BENIGN = "benign"
HOSTILE = st.lists(
    st.sampled_from([*"\"'\n\r\t:{}[]&*!|>#%@`-,? a", "Lifecycle", "Run", "---", "...", "{{x}}", "&x", "*x"]),
    max_size=30,
).map(lambda drawn: f"<<{''.join(drawn)}>>")  # delimited, so that a key made from it maps back to the benign one


def _template(kind: str) -> str:
    return recipes.TEMPLATES[kind].read_text()


def _values(kind: str, text: str) -> dict[str, recipes.Value]:
    """Every string placeholder of the template set to `text`; the model's data placeholders to fixed data."""
    found: dict[str, recipes.Value] = dict.fromkeys(recipes.placeholders(load_yaml(_template(kind))), text)
    if kind == "model":
        found["models"] = {"champion": {"uri": "s3://b/m.json", "sha256": "a" * 64, "metrics": {}}}
        found["artifacts"] = [{"URI": "s3://b/m.json"}]
    return found


def _paths(node: Any, hostile: str, at: tuple[Any, ...] = ()) -> set[tuple[Any, ...]]:
    """Every key path of a document, keys made from the hostile value mapped back to the benign one."""
    if isinstance(node, dict):
        return {at} | {p for k, v in node.items() for p in _paths(v, hostile, (*at, str(k).replace(hostile, BENIGN)))}
    if isinstance(node, list):
        return {at} | {p for i, v in enumerate(node) for p in _paths(v, hostile, (*at, i))}
    return {at}


@pytest.mark.parametrize("kind", sorted(recipes.TEMPLATES))
@given(hostile=HOSTILE)
def test_a_hostile_value_never_changes_a_recipes_keys(kind: str, hostile: str) -> None:
    benign = recipes.render(_template(kind), _values(kind, BENIGN))
    rendered = recipes.render(_template(kind), _values(kind, hostile))
    assert _paths(rendered, hostile) == _paths(benign, BENIGN)
    assert rendered["ComponentName"] == hostile  # the value itself, as one string


def test_a_metrics_file_beside_the_model_is_data_in_the_model_recipe(tmp_path: Path, seed: Path) -> None:
    """The finding: an `rmse` that closes the description's quotes and opens a Lifecycle. It is not a number, so it
    is not taken as a measurement; the description says so with the text as data, and the recipe the local cloud
    registers (validated as CreateComponentVersion validates it) has no Lifecycle anywhere."""
    model = tmp_path / "model.json"
    model.write_bytes((seed / "xgboost_wine_quality.json").read_bytes())
    report = {"model_sha256": artifacts.sha256(model), "held_out": {"rmse": INJECTION, "mae": 0.5}, "rows": {"test": 9}}
    (tmp_path / "metrics.json").write_text(json.dumps({**report, "data_sha256": "ab" * 32}))
    measured = modelfile.metrics(model)
    assert set(measured) == {"unusable"}
    champion = models.StoredModel(f"s3://b/p/{'a' * 64}/model.json", artifacts.sha256(model), measured)
    values = {**models.component_values("com.example.Model", champion, None), "component_version": "1.0.0"}
    recipe = recipes.render_component("model", values)
    plane = ControlPlane(artifact_digest=lambda uri: "digest-of-" + uri)  # no S3 here: the artifact is taken as read
    arn = plane.create_component_version({"inlineRecipe": recipes.to_json(recipe).encode()})["arn"]
    stored = json.loads(plane.get_component({"arn": arn, "recipeOutputFormat": "JSON"})["recipe"])
    assert not any("lifecycle" in str(step).lower() for path in _paths(stored, BENIGN) for step in path)
    assert INJECTION in stored["ComponentDescription"]
    assert "rmse is not a non-negative number" in stored["ComponentDescription"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("rmse", "0.7"), ("rmse", float("nan")), ("mae", -1), ("rows", True), ("data_sha256", "../../etc/passwd")],
)
def test_only_numbers_and_a_digest_are_measurements(tmp_path: Path, seed: Path, field: str, value: object) -> None:
    model = tmp_path / "model.json"
    model.write_bytes((seed / "xgboost_wine_quality.json").read_bytes())
    report: dict[str, Any] = {
        "model_sha256": artifacts.sha256(model),
        "held_out": {"rmse": 0.7, "mae": 0.5},
        "rows": {"test": 9},
        "data_sha256": "ab" * 32,
    }
    if field in ("rmse", "mae"):
        report["held_out"][field] = value
    elif field == "rows":
        report["rows"]["test"] = value
    else:
        report[field] = value
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    measured = modelfile.metrics(model)
    assert list(measured) == ["unusable"] and str(measured["unusable"]).startswith(f"{field} is not")


def test_a_value_inside_text_must_be_text() -> None:
    with pytest.raises(RecipeError, match=r"\{\{name\}\} stands inside text"):
        recipes.render('Key: "prefix-{{name}}"', {"name": ["a", "list"]})


def test_two_keys_that_one_value_makes_equal_are_refused() -> None:
    with pytest.raises(RecipeError, match="two keys"):
        recipes.render('Map:\n  "{{a}}": 1\n  b: 2', {"a": "b"})


def test_yaml_aliases_are_refused_by_the_parser_and_the_control_plane() -> None:
    """A 540-byte recipe of nested aliases expands to tens of megabytes in a parser that follows them; a recipe
    spells its values out, so an alias is refused before anything is expanded, in a template and in
    CreateComponentVersion (answered ValidationException, as the service answers a recipe it cannot read)."""
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(RecipeError, match="aliases"):
        recipes.render(laughs, {})
    with pytest.raises(ServiceError) as refused:
        ControlPlane().create_component_version({"inlineRecipe": laughs.encode()})
    assert "aliases" in str(refused.value)
