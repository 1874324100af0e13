"""A corpus of corrupted models against the model check (subscriber.inference.Model, what `python -m subscriber
check` and `make deploy`'s check run): every field class of XGBoost's JSON model document mutated, over a
thousand models drawn with a fixed seed from a real one. The check never dies by a signal (libxgboost's loader
segfaults on, for one, a node's parent outside its tree), and each refusal names the field that was changed (or,
for the three arrays that describe a tree's shape together, one of them). A model that is still well-formed
after its change may be admitted, and then it scores. All the models run in one child process, which reports each
outcome as it goes: a crash is the child's death, and the model it was on is named."""

from __future__ import annotations

import copy
import json
import random
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.models import small_model

CORPUS = 1200
MEMORY = 2 << 30  # the check's address space, as the device's Install step bounds it
SHAPE = ("left_children", "right_children", "parents")
TREE_ARRAYS = (
    *SHAPE, "split_indices", "split_conditions", "base_weights", "loss_changes", "sum_hessian", "default_left",
    "split_type", "categories", "categories_nodes", "categories_segments", "categories_sizes",
)  # fmt: skip
TREE_PARAMS = ("num_nodes", "num_deleted", "size_leaf_vector", "num_feature")
LEARNER_PARAMS = ("num_feature", "num_class", "num_target", "base_score")
# What an attacker writes in place of a value: out of range either way, past 32 and 64 bits, another type.
VALUES: tuple[Any, ...] = (10_000_000, -5, -1, 2**31, -(2**31), 2**63, 2**64 + 1, 1.5, float("inf"), "x", "", None,
                           True, [1], {"a": 1})  # fmt: skip

Edit = Callable[[dict[str, Any]], None]


def _trees(document: dict[str, Any]) -> list[dict[str, Any]]:
    trees: list[dict[str, Any]] = document["learner"]["gradient_booster"]["model"]["trees"]
    return trees


def mutations(document: dict[str, Any], draw: random.Random) -> list[tuple[str, set[str], Edit]]:
    """(description, the fields a refusal may name, the edit), CORPUS of them."""
    made: list[tuple[str, set[str], Edit]] = []
    trees = len(_trees(document))
    while len(made) < CORPUS:
        tree = draw.randrange(trees)
        nodes = len(_trees(document)[tree]["left_children"])
        node = draw.randrange(nodes)
        value = draw.choice(VALUES)
        kind = draw.randrange(7)
        if kind <= 2:
            field = draw.choice(TREE_ARRAYS)
            names = set(SHAPE) if field in SHAPE else {field}
            how = draw.choice(("set", "set", "truncate", "extend", "remove", "scalar"))

            def edit_array(d: dict[str, Any], t: int = tree, f: str = field, n: int = node, v: Any = value,
                           h: str = how) -> None:  # fmt: skip
                target = _trees(d)[t]
                if h == "set" and isinstance(target.get(f), list) and len(target[f]) > n:
                    target[f][n] = v
                elif h == "truncate":
                    target[f] = target.get(f, [])[: n // 2]
                elif h == "remove":
                    target.pop(f, None)
                elif h == "scalar":
                    target[f] = v
                else:
                    target[f] = [*target.get(f, []), v]

            made.append((f"tree {tree}: {field} {how} [{node}] {value!r}", names, edit_array))
        elif kind == 3:
            field = draw.choice(TREE_PARAMS)
            text = draw.choice((str(value), value))

            def edit_tree_param(d: dict[str, Any], t: int = tree, f: str = field, v: Any = text) -> None:
                _trees(d)[t]["tree_param"][f] = v

            made.append((f"tree {tree}: tree_param.{field} = {text!r}", {field}, edit_tree_param))
        elif kind == 4:
            field = draw.choice(LEARNER_PARAMS)
            text = draw.choice((str(value), value))

            def edit_learner(d: dict[str, Any], f: str = field, v: Any = text) -> None:
                d["learner"]["learner_model_param"][f] = v

            made.append((f"learner_model_param.{field} = {text!r}", {field}, edit_learner))
        elif kind == 5:
            field = draw.choice(("tree_info", "num_trees", "feature_names", "name"))

            def edit_forest(d: dict[str, Any], f: str = field, v: Any = value, n: int = node) -> None:
                model = d["learner"]["gradient_booster"]
                if f == "tree_info" and n < len(model["model"]["tree_info"]):
                    model["model"]["tree_info"][n] = v
                elif f == "num_trees":
                    model["model"]["gbtree_model_param"]["num_trees"] = str(v)
                elif f == "feature_names":
                    names = d["learner"]["feature_names"]
                    names[n % len(names)] = v
                else:
                    model["name"] = v

            made.append((f"{field} <- {value!r} at {node}", {field}, edit_forest))
        else:
            # Two changes at once: whichever the check meets first is named.
            first, second = draw.sample(TREE_ARRAYS, 2)

            def edit_two(d: dict[str, Any], t: int = tree, a: str = first, b: str = second, n: int = node,
                         v: Any = value) -> None:  # fmt: skip
                for f in (a, b):
                    target = _trees(d)[t].get(f)
                    if isinstance(target, list) and len(target) > n:
                        target[n] = v

            names = {first, second} | (set(SHAPE) if {first, second} & set(SHAPE) else set())
            made.append((f"tree {tree}: {first} and {second} [{node}] {value!r}", names, edit_two))
    return made


CHECKER = """
import json, sys
from pathlib import Path
from subscriber.inference import Model, ModelError
from subscriber.native import XGBoostError
for line in sys.stdin:
    path = Path(line.strip())
    print(json.dumps({"file": path.name, "outcome": "started"}), flush=True)
    try:
        model = Model(path)
        model.predict([dict.fromkeys(model.features, 0.0)])
        outcome, message = "scored", ""
    except ModelError as exc:
        outcome, message = ("refused" if " is refused: " in str(exc) else "not loaded"), str(exc)
    except XGBoostError as exc:
        outcome, message = "prediction error", str(exc)
    print(json.dumps({"file": path.name, "outcome": outcome, "message": message}), flush=True)
"""


def test_a_thousand_corrupted_models_never_crash_the_check_and_each_refusal_names_its_field(
    seed: Path, tmp_path: Path
) -> None:
    base = json.loads(small_model(tmp_path, seed).read_text())
    made = mutations(base, random.Random(20261208))
    named: dict[str, tuple[str, set[str]]] = {}
    for index, (description, names, edit) in enumerate(made):
        document = copy.deepcopy(base)
        edit(document)
        path = tmp_path / f"mutant-{index:04d}.json"
        path.write_text(json.dumps(document))  # inf and nan as JSON's non-standard literals, as some writers do
        named[path.name] = (description, names)
    done = subprocess.run(
        [sys.executable, "-c", CHECKER],
        input="".join(f"{tmp_path / name}\n" for name in named),
        capture_output=True, text=True, timeout=600, check=False,
        env={"PYTHONPATH": str(REPO / "components" / "subscriber"), "PATH": "/usr/bin:/bin"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY)),  # a bomb fails, not the machine
    )  # fmt: skip
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    ended = [r for r in reports if r["outcome"] != "started"]
    if done.returncode != 0:
        last = reports[-1]["file"] if reports else "the first"
        pytest.fail(f"the check died (exit {done.returncode}) on {last}: {named.get(last)}\n{done.stderr[-2000:]}")
    assert len(ended) == len(named) >= 1000
    outcomes = {r["outcome"] for r in ended}
    # libxgboost is never the one to refuse: the check has named the field before it reads the file.
    assert outcomes == {"refused", "scored"}, [r for r in ended if r["outcome"] not in ("refused", "scored")][:5]
    unnamed = [
        (named[r["file"]][0], r["message"])
        for r in ended
        if r["outcome"] == "refused" and not any(field in r["message"] for field in named[r["file"]][1])
    ]
    assert unnamed == [], "\n".join(map(str, unnamed))
