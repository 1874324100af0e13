"""What a model must be before libxgboost scores anything with it.

libxgboost loads a model file as it is written and trusts it when it predicts: a child index past the end of a
tree reads outside the tree (a segfault, or a score from memory that is not the model), a split on a feature past
the row reads outside the row, and feature names fewer than the features shift every record's values by a column
and score them wrongly but finitely. So the model, as libxgboost holds it after loading (its own JSON, whatever the
file's format), is read here first: every tree's nodes within the tree and visited in order, every split within
the features, one name per feature. A kind of model the subscriber's in-place prediction cannot score as XGBoost's
own `predict` does is refused with the reason.
"""

from __future__ import annotations

import itertools
from typing import Any

BOOSTERS = ("gbtree", "dart")
REFUSED_BOOSTERS = {
    "gblinear": "libxgboost's in-place prediction, which the subscriber uses, does not serve linear boosters; "
    "train it with booster gbtree or dart",
}
NODE_ARRAYS = ("left_children", "right_children", "parents", "split_indices", "split_conditions", "default_left")


class Inadmissible(ValueError):
    """The model would mislead or crash libxgboost; the message says where."""


def check(model: dict[str, Any]) -> None:
    """Inadmissible naming the first thing wrong with a model (libxgboost's JSON model document)."""
    try:
        learner = model["learner"]
        booster = learner["gradient_booster"]
        features = int(learner["learner_model_param"]["num_feature"])
        outputs = max(1, int(learner["learner_model_param"].get("num_class", 0) or 0))
        outputs = max(outputs, int(learner["learner_model_param"].get("num_target", 1) or 1))
    except (KeyError, TypeError, ValueError) as exc:
        raise Inadmissible(f"not an XGBoost model document: no {exc}") from None
    name = booster.get("name")
    if name in REFUSED_BOOSTERS:
        raise Inadmissible(f"a {name} model: {REFUSED_BOOSTERS[name]}")
    if name not in BOOSTERS:
        raise Inadmissible(f"booster {name!r} is not one the subscriber serves ({', '.join(BOOSTERS)})")
    names = learner.get("feature_names") or []
    if len(names) != features:
        raise Inadmissible(
            f"it names {len(names)} features but scores rows of {features}: records are matched to features by "
            "name, so every name must be given"
        )
    trees_model = (booster["gbtree"] if name == "dart" else booster)["model"]
    trees = trees_model.get("trees") or []
    _check_forest(trees_model, trees, outputs)
    if name == "dart" and len(booster.get("weight_drop") or []) != len(trees):
        raise Inadmissible(f"a dart model with {len(booster.get('weight_drop') or [])} weights for {len(trees)} trees")
    for at, tree in enumerate(trees):
        _check_tree(at, tree, features)


def _check_forest(trees_model: dict[str, Any], trees: list[Any], outputs: int) -> None:
    declared = int((trees_model.get("gbtree_model_param") or {}).get("num_trees", len(trees)))
    if declared != len(trees):
        raise Inadmissible(f"it declares {declared} trees and holds {len(trees)}")
    groups = trees_model.get("tree_info") or []
    if len(groups) != len(trees) or any(not isinstance(g, int) or not 0 <= g < outputs for g in groups):
        raise Inadmissible(f"its tree_info does not give each of its {len(trees)} trees one of {outputs} outputs")
    bounds = trees_model.get("iteration_indptr")
    if bounds is not None and (
        not bounds or bounds[0] != 0 or bounds[-1] != len(trees) or any(a > b for a, b in itertools.pairwise(bounds))
    ):
        raise Inadmissible(f"its iteration_indptr does not divide its {len(trees)} trees into rounds")


def _check_tree(at: int, tree: dict[str, Any], features: int) -> None:
    where = f"tree {at}"
    try:
        nodes = int(tree["tree_param"]["num_nodes"])
        leaf_vector = int(tree["tree_param"].get("size_leaf_vector", 0) or 0)
        arrays = {key: tree[key] for key in NODE_ARRAYS}
    except (KeyError, TypeError, ValueError) as exc:
        raise Inadmissible(f"{where}: no {exc}") from None
    if leaf_vector > 1:
        raise Inadmissible(f"{where}: vector-leaf trees (multi_strategy) are not served")
    if nodes < 1 or any(len(values) != nodes for values in arrays.values()):
        raise Inadmissible(f"{where}: its node arrays do not all hold its {nodes} nodes")
    if len(tree.get("base_weights") or []) != nodes:
        raise Inadmissible(f"{where}: its leaf values do not hold its {nodes} nodes")
    if any(kind != 0 for kind in tree.get("split_type") or []):
        raise Inadmissible(f"{where}: categorical splits are not served (records carry numbers)")
    left, right, split = arrays["left_children"], arrays["right_children"], arrays["split_indices"]
    for node in range(nodes):
        if left[node] == -1 and right[node] == -1:
            continue
        # Children come after their parent (a tree grows by appending nodes): no index outside, and no loop.
        if not (node < left[node] < nodes and node < right[node] < nodes):
            raise Inadmissible(f"{where}: node {node}'s children {left[node]}, {right[node]} are outside the tree")
        if not 0 <= split[node] < features:
            raise Inadmissible(f"{where}: node {node} splits on feature {split[node]} of {features}")
