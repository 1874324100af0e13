"""The promotion gate: is the shadow challenger better than the champion, judged on labelled records, with error rates
that hold however often it is looked at.

Evidence is paired: for each record whose ground truth came back, the champion's and the challenger's squared
errors, and their difference d = champion's - challenger's (above 0: the challenger was closer). The gate keeps a
confidence sequence for the mean of d (Johari, Pekelis and Walsh, "Always Valid Inference", 2017: the normal
mixture SPRT, mixing over the effect with a N(0, tau^2) prior), which covers the true mean at every n at once with
probability at least 1 - alpha, so it may be read after every telemetry window without inflating its error.

Assumptions, said plainly: the differences are independent draws (records are, and a label is joined once); their
mean over many records is close to normal (it is a sum); their variance is estimated from the same data (the
plug-in that Johari et al. use in practice), which is why the gate waits for MIN_PAIRS before saying anything.

Verdicts: "better" when the whole sequence lies above PROMOTE_MIN_GAIN (a gain too small to matter promotes
nothing), "worse" when it lies below 0, else "not enough evidence" with the pairs likely needed at the current
mean. The two one-sided claims share alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
MIN_PAIRS = 100  # below it the variance estimate is too rough to trust a verdict
TAU = 0.1  # the mixture's scale: the size of a loss difference worth finding quickly (squared grade units)


@dataclass(frozen=True)
class Evidence:
    """Sufficient statistics of the paired differences, as telemetry windows add them up."""

    pairs: int = 0
    total: float = 0.0  # sum of d
    total_sq: float = 0.0  # sum of d^2

    def add(self, champion_sq_error: float, challenger_sq_error: float) -> Evidence:
        d = champion_sq_error - challenger_sq_error
        return Evidence(self.pairs + 1, self.total + d, self.total_sq + d * d)

    def __add__(self, other: Evidence) -> Evidence:
        return Evidence(self.pairs + other.pairs, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        return self.total / self.pairs if self.pairs else 0.0

    @property
    def variance(self) -> float:
        if self.pairs < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.pairs * self.mean**2) / (self.pairs - 1))


@dataclass(frozen=True)
class Verdict:
    state: str  # "better", "worse" or "not enough evidence"
    pairs: int
    mean_gain: float  # the challenger's mean reduction of squared error
    low: float  # the confidence sequence at this n
    high: float
    more_pairs: int | None  # likely needed for a verdict at the current mean, when there is none yet


def half_width(n: int, variance: float, alpha: float = ALPHA, tau: float = TAU) -> float:
    """The normal mixture SPRT's confidence radius for the mean after n pairs (two-sided, level alpha)."""
    if n == 0 or variance <= 0:
        return math.inf if n == 0 else 0.0
    spread = variance + n * tau * tau
    return math.sqrt(spread * variance / (n * n * tau * tau) * (2 * math.log(1 / alpha) + math.log(spread / variance)))


def judge(evidence: Evidence, min_gain: float = 0.0, alpha: float = ALPHA) -> Verdict:
    n, mean, variance = evidence.pairs, evidence.mean, evidence.variance
    radius = half_width(n, variance, alpha)
    low, high = mean - radius, mean + radius
    if n >= MIN_PAIRS and low > min_gain:
        return Verdict("better", n, mean, low, high, None)
    if n >= MIN_PAIRS and high < 0:
        return Verdict("worse", n, mean, low, high, None)
    return Verdict("not enough evidence", n, mean, low, high, _needed(n, mean, variance, min_gain, alpha))


def _needed(n: int, mean: float, variance: float, min_gain: float, alpha: float) -> int | None:
    """Pairs in all at which the sequence would clear its bound if the mean and variance stayed as they are."""
    gap = mean - min_gain if mean > min_gain else -mean if mean < 0 else 0.0
    if gap <= 0 or variance <= 0:
        return None  # at the boundary: no n decides it
    low, high = max(n, MIN_PAIRS), max(n, MIN_PAIRS)
    while half_width(high, variance, alpha) >= gap:
        low, high = high, high * 2
        if high > 1 << 40:
            return None
    while low < high:  # the smallest n whose radius is under the gap
        middle = (low + high) // 2
        low, high = (middle + 1, high) if half_width(middle, variance, alpha) >= gap else (low, middle)
    return high
