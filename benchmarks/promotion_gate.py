"""The promotion gate's error rates, measured with its own code (scripts.monitoring.gate) over seeded simulations.

`python -m benchmarks.promotion_gate [--trials 200]`: a champion with the reference model's error (RMSE 0.65
grades) and a challenger whose errors are correlated with it (two models of the same data err alike, rho 0.7), its
RMSE equal, 0.3 higher or 0.1 lower. Labelled pairs arrive in windows of 50 (as telemetry windows bring them); the
gate is read after every window, as an operator running `make monitor` or `make promote` would. Per scenario: how
often the gate said better or worse within the budget, and the median pairs it needed. Prints the table and writes
build/benchmarks/promotion_gate.json (or `--out`).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scripts.monitoring import gate
from scripts.product import REPO

CHAMPION_RMSE = 0.65
CORRELATION = 0.7
WINDOW = 50


@dataclass(frozen=True)
class Scenario:
    name: str
    challenger_rmse: float
    budget: int  # labelled pairs within which the gate should decide
    expected: str  # the verdict it should reach ("not enough evidence": none)
    correlation: float = CORRELATION


SCENARIOS = (
    Scenario("equal", CHAMPION_RMSE, 5000, "not enough evidence"),
    Scenario("worse by 0.3 RMSE", CHAMPION_RMSE + 0.3, 2000, "worse"),
    Scenario("better by 0.1 RMSE", CHAMPION_RMSE - 0.1, 5000, "better"),
    # The hard case: errors that share nothing (rho 0), so each pair carries the most noise.
    Scenario("equal, rho 0", CHAMPION_RMSE, 5000, "not enough evidence", 0.0),
    Scenario("worse by 0.3, rho 0", CHAMPION_RMSE + 0.3, 2000, "worse", 0.0),
    Scenario("better by 0.1, rho 0", CHAMPION_RMSE - 0.1, 5000, "better", 0.0),
)


@dataclass(frozen=True)
class Measured:
    scenario: str
    trials: int
    better: float  # share of trials the gate called better within the budget
    worse: float
    median_pairs: int | None  # of the trials that reached a verdict


def simulate(scenario: Scenario, trials: int, seed: int, min_gain: float = 0.0) -> Measured:
    draw = np.random.default_rng(seed)
    verdicts: list[gate.Verdict] = []
    for _ in range(trials):
        first, second = draw.standard_normal((2, scenario.budget))
        champion = CHAMPION_RMSE * first
        rho = scenario.correlation
        challenger = scenario.challenger_rmse * (rho * first + np.sqrt(1 - rho**2) * second)
        differences = champion**2 - challenger**2
        evidence = gate.Evidence()
        verdict = gate.judge(evidence, min_gain)
        for start in range(0, scenario.budget, WINDOW):
            window = differences[start : start + WINDOW]
            evidence = evidence + gate.Evidence(len(window), float(window.sum()), float((window**2).sum()))
            verdict = gate.judge(evidence, min_gain)
            if verdict.state != "not enough evidence":
                break
        verdicts.append(verdict)
    decided = [v.pairs for v in verdicts if v.state != "not enough evidence"]
    return Measured(
        scenario.name,
        trials,
        sum(v.state == "better" for v in verdicts) / trials,
        sum(v.state == "worse" for v in verdicts) / trials,
        int(statistics.median(decided)) if decided else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "benchmarks" / "promotion_gate.json")
    args = parser.parse_args()
    results = [simulate(s, args.trials, args.seed + i) for i, s in enumerate(SCENARIOS)]
    print(f"{'challenger':<22}{'budget':>8}{'better':>9}{'worse':>8}{'median pairs':>14}")
    for scenario, measured in zip(SCENARIOS, results, strict=True):
        print(f"{scenario.name:<22}{scenario.budget:>8}{measured.better:>9.1%}{measured.worse:>8.1%}"
              f"{measured.median_pairs or '-':>14}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(m) for m in results], indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
