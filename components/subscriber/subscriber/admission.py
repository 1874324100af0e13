"""What a model must be before libxgboost scores anything with it, or reads it at all.

libxgboost's loader and its prediction trust a model file as it is written: a node's parent outside its tree
segfaults the loader itself, 2**31 outputs exhaust the machine, a child index past the end of a tree reads outside
the tree (a segfault, or a score from memory that is not the model), a split on a feature past the row reads
outside the row, and feature names fewer than the features shift every record's values by a column and score them
wrongly but finitely. So the model's JSON document is read here first, field by field, as strictly as libxgboost's
own reader takes it (types included), and each refusal names the field: a JSON file before libxgboost reads a byte
of it, and every model again as libxgboost writes it back after loading (a UBJ file is only seen that way). A kind
of model the subscriber's in-place prediction cannot score as XGBoost's own `predict` does is refused with the
reason.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

BOOSTERS = ("gbtree", "dart")
REFUSED_BOOSTERS = {
    "gblinear": "libxgboost's in-place prediction, which the subscriber uses, does not serve linear boosters; "
    "train it with booster gbtree or dart",
}
INDEX_ARRAYS = ("left_children", "right_children", "parents", "split_indices")
NUMBER_ARRAYS = ("split_conditions", "base_weights", "loss_changes", "sum_hessian")
FLAG_ARRAYS = ("default_left", "split_type")
CATEGORY_ARRAYS = ("categories", "categories_nodes", "categories_segments", "categories_sizes")
# The root's parent as XGBoost writes it (RegTree's invalid node id, -1, with its left-child bit cleared).
ROOT_PARENTS = (2147483647, -1)
MAX_FEATURES = 1 << 20  # far beyond a model scored message by message; libxgboost sizes buffers by it


class Inadmissible(ValueError):
    """The model would mislead or crash libxgboost; the message names the field."""


def _count(value: Any, field: str, low: int) -> int:
    """An XGBoost model parameter (a decimal string, as libxgboost writes and reads them) of at least `low`."""
    try:
        number = int(value) if isinstance(value, str) else None
    except ValueError:
        number = None
    if number is None:
        raise Inadmissible(f"{field} is {value!r}, not a whole number in a string")
    if number < low:
        raise Inadmissible(f"{field} is {number}, under {low}")
    return number


def check(model: Any) -> None:
    """Inadmissible naming the first field wrong with a model: libxgboost's JSON model document, as a file holds it
    (read before libxgboost loads anything) or as libxgboost writes it back."""
    learner = model.get("learner") if isinstance(model, dict) else None
    booster = learner.get("gradient_booster") if isinstance(learner, dict) else None
    parameters = learner.get("learner_model_param") if isinstance(learner, dict) else None
    for field, value in (("learner", learner), ("gradient_booster", booster), ("learner_model_param", parameters)):
        if not isinstance(value, dict):
            raise Inadmissible(f"{field} is not an object: not an XGBoost model document")
    assert isinstance(learner, dict) and isinstance(booster, dict) and isinstance(parameters, dict)
    name = booster.get("name")
    features = _count(parameters.get("num_feature"), "learner_model_param.num_feature", 1)
    if features > MAX_FEATURES:
        raise Inadmissible(f"learner_model_param.num_feature is {features}, over {MAX_FEATURES}")
    outputs = max(1, _count(parameters.get("num_class", "0"), "learner_model_param.num_class", 0))
    outputs = max(outputs, _count(parameters.get("num_target", "1"), "learner_model_param.num_target", 1))
    written = parameters.get("base_score", "0.5")
    try:
        base_score = float(written.strip("[]").split(",")[0]) if isinstance(written, str) else math.nan
    except ValueError:
        base_score = math.nan
    if not math.isfinite(base_score):
        raise Inadmissible(f"learner_model_param.base_score is {parameters.get('base_score')!r}, not a finite number")
    if not isinstance(name, str):
        raise Inadmissible(f"gradient_booster.name is {name!r}, not a booster's name")
    if name in REFUSED_BOOSTERS:
        raise Inadmissible(f"a {name} model: {REFUSED_BOOSTERS[name]}")
    if name not in BOOSTERS:
        raise Inadmissible(f"gradient_booster.name {name!r} is not one the subscriber serves ({', '.join(BOOSTERS)})")
    names = learner.get("feature_names") or []
    if not isinstance(names, list) or len(names) != features:
        raise Inadmissible(
            f"feature_names: it names {len(names)} features but scores rows of {features}: records are matched to "
            "features by name, so every name must be given"
        )
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise Inadmissible("feature_names must be distinct non-empty names")
    try:
        trees_model = (booster["gbtree"] if name == "dart" else booster)["model"]
        trees = trees_model["trees"]
    except (KeyError, TypeError) as exc:
        raise Inadmissible(f"gradient_booster.model: no {exc}") from None
    if not isinstance(trees, list):
        raise Inadmissible("gradient_booster.model.trees is not a list")
    _check_forest(trees_model, trees, outputs)
    weights = booster.get("weight_drop") if name == "dart" else None
    if name == "dart" and (not isinstance(weights, list) or len(weights) != len(trees)):
        raise Inadmissible(f"weight_drop: a dart model with {len(weights or [])} weights for {len(trees)} trees")
    for at, tree in enumerate(trees):
        _check_tree(at, tree, features)


def _check_forest(trees_model: dict[str, Any], trees: list[Any], outputs: int) -> None:
    parameters = trees_model.get("gbtree_model_param") or {}
    declared = _count(parameters.get("num_trees", str(len(trees))), "gbtree_model_param.num_trees", 0)
    if declared != len(trees):
        raise Inadmissible(f"gbtree_model_param.num_trees: it declares {declared} trees and holds {len(trees)}")
    groups = trees_model.get("tree_info") or []
    if len(groups) != len(trees) or any(type(g) is not int or not 0 <= g < outputs for g in groups):
        raise Inadmissible(f"tree_info does not give each of its {len(trees)} trees one of {outputs} outputs")
    if outputs > max(1, len(trees)):
        # libxgboost sizes its buffers by the outputs the parameters declare: 2**31 of them exhaust the machine.
        raise Inadmissible(
            f"learner_model_param.num_class/num_target: {outputs} outputs for {len(trees)} trees (tree_info)"
        )
    bounds = trees_model.get("iteration_indptr")
    if bounds is not None and (
        not isinstance(bounds, list)
        or not bounds
        or any(type(b) is not int for b in bounds)
        or bounds[0] != 0
        or bounds[-1] != len(trees)
        or any(a > b for a, b in itertools.pairwise(bounds))
    ):
        raise Inadmissible(f"iteration_indptr does not divide its {len(trees)} trees into rounds")


def _check_tree(at: int, tree: Any, features: int) -> None:
    where = f"tree {at}"
    if not isinstance(tree, dict) or not isinstance(tree.get("tree_param"), dict):
        raise Inadmissible(f"{where}: no tree_param")
    parameters = tree["tree_param"]
    nodes = _count(parameters.get("num_nodes"), f"{where}: tree_param.num_nodes", 1)
    deleted = _count(parameters.get("num_deleted", "0"), f"{where}: tree_param.num_deleted", 0)
    if deleted >= nodes:
        raise Inadmissible(f"{where}: tree_param.num_deleted is {deleted} of {nodes} nodes")
    leaf_vector = _count(parameters.get("size_leaf_vector", "0"), f"{where}: tree_param.size_leaf_vector", 0)
    if leaf_vector > 1:
        raise Inadmissible(f"{where}: tree_param.size_leaf_vector is {leaf_vector}: vector-leaf trees are not served")
    if (
        "num_feature" in parameters
        and _count(parameters["num_feature"], f"{where}: tree_param.num_feature", 0) > features
    ):
        raise Inadmissible(f"{where}: tree_param.num_feature is over the model's {features}")
    arrays = {}
    for field in (*INDEX_ARRAYS, *NUMBER_ARRAYS, *FLAG_ARRAYS):
        values = tree.get(field)
        if not isinstance(values, list) or len(values) != nodes:
            held = len(values) if isinstance(values, list) else "no list of"
            raise Inadmissible(f"{where}: {field} holds {held} nodes, not tree_param.num_nodes {nodes}")
        # libxgboost's JSON reader takes integers where it keeps indices and flags, and reals for the rest.
        kind, named = (float, "a real") if field in NUMBER_ARRAYS else (int, "an integer")
        for node, value in enumerate(values):
            if type(value) is not kind:
                raise Inadmissible(f"{where}: {field}[{node}] is {value!r}, not {named}")
        arrays[field] = values
    for field in CATEGORY_ARRAYS:
        if tree.get(field) != []:
            raise Inadmissible(
                f"{where}: {field} is not an empty list: categorical splits are not served (records carry numbers)"
            )
    if any(kind != 0 for kind in arrays["split_type"]):
        raise Inadmissible(f"{where}: split_type: categorical splits are not served (records carry numbers)")
    if any(flag not in (0, 1) for flag in arrays["default_left"]):
        raise Inadmissible(f"{where}: default_left holds a value other than 0 or 1")
    left, right, split, parents = (arrays[k] for k in ("left_children", "right_children", "split_indices", "parents"))
    if parents[0] not in ROOT_PARENTS:
        raise Inadmissible(f"{where}: parents[0] is {parents[0]}: the root has no parent")
    for node in range(1, nodes):
        if not 0 <= parents[node] < nodes:
            raise Inadmissible(f"{where}: parents[{node}] is {parents[node]}, outside the tree's {nodes} nodes")
    for node in range(nodes):
        if left[node] == -1 and right[node] == -1:
            continue
        # Children come after their parent (a tree grows by appending nodes): no index outside, and no loop.
        for field, child in (("left_children", left[node]), ("right_children", right[node])):
            if not node < child < nodes:
                raise Inadmissible(f"{where}: {field}[{node}] is {child}, outside the tree or not after its parent")
            if parents[child] != node:
                raise Inadmissible(f"{where}: parents[{child}] is {parents[child]}, not {node}, whose child it is")
        if not 0 <= split[node] < features:
            raise Inadmissible(f"{where}: split_indices[{node}] is {split[node]}: node {node} splits on a feature "
                               f"past the model's {features}")  # fmt: skip
    for field in NUMBER_ARRAYS[:2]:  # what a prediction reads: the thresholds and the leaf values
        for node, value in enumerate(arrays[field]):
            if not math.isfinite(value):
                raise Inadmissible(f"{where}: {field}[{node}] is {value}, not finite")
