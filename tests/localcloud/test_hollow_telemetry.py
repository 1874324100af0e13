"""The hollow devices' telemetry: the drift specification, the moved shares, and windows in the subscriber's format
whose counts add up (localcloud.hollow_telemetry)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from localcloud.hollow import Drift, DriftSpecError, ScaledClock
from localcloud.hollow_telemetry import HollowTelemetry, Reference, Setup

PROFILE = {
    "features": {
        "alcohol": {"edges": [8.0, 9.0, 10.0, 11.0, 12.0], "shares": [0, 0.25, 0.25, 0.25, 0.25, 0], "std": 1.0},
        "pH": {"edges": [3.0, 3.2, 3.4], "shares": [0, 0.5, 0.5, 0], "std": 0.2},
    },
    "prediction": {"edges": [5.0, 6.0, 7.0], "shares": [0, 0.5, 0.5, 0]},
}


def test_a_drift_parses_and_picks_its_share_of_the_devices_from_the_seed() -> None:
    drift = Drift.parse("0.1:alcohol,pH:1.0", seed=3)
    assert (drift.share, drift.features, drift.shift) == (0.1, ("alcohol", "pH"), 1.0)
    picked = [index for index in range(10_000) if drift.drifted(index)]
    assert 900 < len(picked) < 1100
    assert picked == [index for index in range(10_000) if Drift.parse("0.1:alcohol,pH:1.0", seed=3).drifted(index)]
    for wrong in ("0.1:alcohol", "2:alcohol:1", "0.1::1", "x:alcohol:1"):
        with pytest.raises(DriftSpecError, match="SHARE:FEATURE"):
            Drift.parse(wrong)
    assert Drift.parse("").share == 0


def test_moving_by_one_standard_deviation_moves_each_bins_mass_by_one_bin_here() -> None:
    """Values spread evenly within each bin, moved by one std (one bin's width here): each bin's share lands in the
    next bin up, the top one in the overflow."""
    reference = Reference.of(json.dumps(PROFILE).encode())
    moved = reference.shares("alcohol", 1.0)
    assert np.allclose(moved, [0, 0, 0.25, 0.25, 0.25, 0.25])
    half = reference.shares("alcohol", 0.5)
    assert np.allclose(half, [0, 0.125, 0.25, 0.25, 0.25, 0.125])
    assert np.allclose(reference.shares("pH", 0.0), [0, 0.5, 0.5, 0])


def test_a_hollow_window_counts_add_up_and_a_drifted_device_differs() -> None:
    raw = json.dumps(PROFILE).encode()
    setup = Setup("edgeml", 300.0, Reference.of(raw), "c" * 64, "1.0.0")
    sent: list[tuple[str, bytes, str]] = []
    telemetry = HollowTelemetry(
        ["a", "b"], Drift(1.0, ("alcohol",), 1.0), ScaledClock(), lambda thing: setup, lambda *m: sent.append(m)
    )
    window = telemetry.window("a", setup, 100.0, 0, 100.0, 400.0)
    assert window["schema"] == "edgeml.telemetry/1" and window["profile"] == Reference.of(raw).sha256
    assert window["records"] == 2 * window["messages"] and 200 < window["messages"] < 400  # a message a second
    assert all(sum(bins) == window["records"] for bins in window["features"])
    assert sum(window["prediction"]) == window["records"] and sum(window["latency"]) == window["messages"]
    assert window["features"][0][1] == 0  # every device drifted: no alcohol left in the lowest inner bin
