"""The promotion gate (scripts.monitoring.gate): a normal mixture SPRT's confidence sequence on the paired squared-
error differences (Johari, Pekelis and Walsh, "Always Valid Inference", 2017). Its error rates, measured with its
own code over seeded simulations read after every window of 50 labelled pairs (the reduced form of
benchmarks.promotion_gate, at the hard case of errors that share nothing), and what it says on the way."""

from __future__ import annotations

import pytest

from benchmarks.promotion_gate import CHAMPION_RMSE, Scenario, simulate
from scripts.monitoring import gate

TRIALS = 100


def test_an_equal_challenger_is_promoted_in_at_most_five_percent_of_trials() -> None:
    measured = simulate(Scenario("equal", CHAMPION_RMSE, 5000, "", 0.0), TRIALS, seed=11)
    assert measured.better <= 0.05, measured


def test_a_challenger_worse_by_0_3_rmse_is_found_worse_within_2000_pairs() -> None:
    measured = simulate(Scenario("worse", CHAMPION_RMSE + 0.3, 2000, "", 0.0), TRIALS, seed=12)
    assert measured.worse >= 0.95 and measured.better == 0, measured


def test_a_challenger_better_by_0_1_rmse_is_promoted_within_5000_pairs() -> None:
    measured = simulate(Scenario("better", CHAMPION_RMSE - 0.1, 5000, "", 0.0), TRIALS, seed=13)
    assert measured.better >= 0.90 and measured.worse == 0, measured


def test_windows_add_up_as_pairs_do_and_the_gate_waits_for_enough_of_them() -> None:
    one_by_one = gate.Evidence()
    for champion, challenger in [(0.5, 0.1), (0.2, 0.4), (1.0, 0.3)]:
        one_by_one = one_by_one.add(champion, challenger)
    window = gate.Evidence(3, 0.4 - 0.2 + 0.7, 0.16 + 0.04 + 0.49)
    assert one_by_one.pairs == window.pairs and one_by_one.total == pytest.approx(window.total)
    assert one_by_one.variance == pytest.approx(window.variance)
    early = gate.judge(gate.Evidence(gate.MIN_PAIRS - 1, 50.0, 60.0))  # a large gain, too few pairs
    assert early.state == "not enough evidence" and early.more_pairs == gate.MIN_PAIRS


def test_a_gain_under_the_minimum_that_matters_promotes_nothing_and_says_how_long() -> None:
    steady = gate.Evidence(4000, 4000 * 0.05, 4000 * (0.05**2 + 0.3**2))  # a real gain of 0.05, sd 0.3
    assert gate.judge(steady).state == "better"
    held = gate.judge(steady, min_gain=0.1)
    assert held.state == "not enough evidence" and held.low < 0.1 and held.more_pairs is None  # 0.05 never clears 0.1
    young = gate.judge(gate.Evidence(200, 200 * 0.05, 200 * (0.05**2 + 0.3**2)))
    assert young.state == "not enough evidence" and young.more_pairs is not None and young.more_pairs > 200
