"""The model's reference profile, as the device reads it: fixed bin edges for every feature the model reads and for
its predictions, and the training rows' share in each bin.

`make model` writes it beside the model (subscriber_training.profile); it ships in the model component as an
artifact of the same version. The device only bins what it sees with these edges: the shares are for `make monitor`,
which compares a fleet's bins with them. Bins are the same everywhere, so counts from any device and any window add.

A bin is found with `bisect_right`: bin 0 holds values under the first edge (underflow), bin i values in
[edges[i-1], edges[i]), and the last bin values at or over the last edge (overflow). The last edge is just above the
training maximum, so every training value falls in an inner bin.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "edgeml.profile/1"


class ProfileError(ValueError):
    """The profile cannot be used with this model; the message says why and names the file."""


@dataclass(frozen=True)
class Profile:
    features: dict[str, tuple[float, ...]]  # name -> edges, in the model's feature order
    prediction: tuple[float, ...]
    sha256: str  # of the file's bytes: the windows name the reference they were binned with

    @classmethod
    def load(cls, path: Path, model_features: list[str]) -> Profile:
        try:
            raw = path.read_bytes()
            document = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ProfileError(f"profile {path} cannot be read: {exc}") from None
        try:
            return cls.parse(document, model_features, hashlib.sha256(raw).hexdigest())
        except ProfileError as exc:
            raise ProfileError(f"profile {path}: {exc}") from None

    @classmethod
    def parse(cls, document: Any, model_features: list[str], sha256: str) -> Profile:
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            raise ProfileError(f"not a {SCHEMA} document")
        features = document.get("features")
        if not isinstance(features, dict):
            raise ProfileError("it has no features")
        if list(features) != list(model_features):
            raise ProfileError(
                f"its features {sorted(features)} are not the model's {sorted(model_features)}"
                if set(features) != set(model_features)
                else "its features are not in the model's order"
            )
        edges = {name: _edges(name, spec) for name, spec in features.items()}
        return cls(edges, _edges("prediction", document.get("prediction")), sha256)


def _edges(name: str, spec: Any) -> tuple[float, ...]:
    edges = spec.get("edges") if isinstance(spec, dict) else None
    if (
        not isinstance(edges, list)
        or not edges
        or not all(isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e) for e in edges)
        or any(a >= b for a, b in itertools.pairwise(edges))
    ):
        raise ProfileError(f"{name}: edges must be a non-empty list of finite numbers, strictly increasing")
    shares = spec.get("shares")
    if not isinstance(shares, list) or len(shares) != len(edges) + 1:
        raise ProfileError(f"{name}: shares must hold one number per bin ({len(edges) + 1})")
    return tuple(float(e) for e in edges)


def bin_of(edges: tuple[float, ...], value: float) -> int:
    """0: under the first edge; len(edges): at or over the last."""
    return bisect.bisect_right(edges, value)


def main(argv: list[str] | None = None) -> int:
    """`python -m subscriber.profile --model M PROFILE`: whether the device will bin with this profile (exit 0,
    one line) or not (exit 1, `error: ` and why)."""
    from subscriber.inference import Model, ModelError

    parser = argparse.ArgumentParser(prog="python -m subscriber.profile", description=main.__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("profile", type=Path)
    args = parser.parse_args(argv)
    try:
        profile = Profile.load(args.profile, Model(args.model).features)
    except (ModelError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"profile {args.profile}: {len(profile.features)} features, sha256 {profile.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
