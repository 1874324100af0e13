"""How fast an IoT job reaches its targets and when it gives up: its rollout rate and abort criteria. No I/O.

The IoT developer guide ("Job rollout, scheduling, and abort configurations"; CreateJob's
JobExecutionsRolloutConfig and AbortConfig): a job notifies at most `maximumPerMinute` things a minute (1000
when unset); an exponential rate starts at `baseRatePerMinute` and is multiplied by `incrementFactor` each time
`numberOfNotifiedThings` more things were notified (or `numberOfSucceededThings` more succeeded), never above
`maximumPerMinute`. An abort criterion cancels the job once `minNumberOfExecutedThings` things have executed it
and the share of them that failed in its way (FAILED, REJECTED, TIMED_OUT, or ALL three) reaches
`thresholdPercentage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MINUTE = 60.0
DEFAULT_PER_MINUTE = 1000
FAILURES: dict[str, tuple[str, ...]] = {
    "FAILED": ("FAILED",),
    "REJECTED": ("REJECTED",),
    "TIMED_OUT": ("TIMED_OUT",),
    "ALL": ("FAILED", "REJECTED", "TIMED_OUT"),
}
# Executed: the thing ran the job to an end of its own (not canceled or removed by the service).
EXECUTED = ("SUCCEEDED", *FAILURES["ALL"])


class ConfigError(ValueError):
    """A rollout or abort configuration the service would refuse."""


@dataclass
class Rate:
    """The job's notification budget, minute by minute since it was created."""

    per_minute: float
    maximum: int
    factor: float = 1.0
    after_notified: int | None = None
    after_succeeded: int | None = None
    window: float = 0.0  # when the current minute started
    in_window: int = 0
    notified_mark: int = 0  # the counts when the rate last rose
    succeeded_mark: int = 0

    @classmethod
    def of(cls, config: Mapping[str, Any] | None, now: float) -> Rate:
        config = config or {}
        given = config.get("maximumPerMinute")
        maximum = DEFAULT_PER_MINUTE if given is None else int(given)
        if not 1 <= maximum <= DEFAULT_PER_MINUTE:
            raise ConfigError(f"maximumPerMinute must be 1 to {DEFAULT_PER_MINUTE}, not {maximum}")
        exponential = config.get("exponentialRate")
        if not exponential:
            return cls(maximum, maximum, window=now)
        criteria = exponential.get("rateIncreaseCriteria") or {}
        notified, succeeded = criteria.get("numberOfNotifiedThings"), criteria.get("numberOfSucceededThings")
        if (notified is None) == (succeeded is None):
            raise ConfigError("rateIncreaseCriteria takes one of numberOfNotifiedThings and numberOfSucceededThings")
        base, factor = int(exponential["baseRatePerMinute"]), float(exponential["incrementFactor"])
        if not 1 <= base <= DEFAULT_PER_MINUTE or not 1.1 <= factor <= 5:
            raise ConfigError(
                f"baseRatePerMinute {base} (1 to 1000) or incrementFactor {factor} (1.1 to 5) is out of range"
            )
        return cls(min(base, maximum), maximum, factor, notified, succeeded, window=now)

    def room(self, now: float, notified: int, succeeded: int) -> int:
        """How many more things may be notified now, given how many were notified and succeeded so far."""
        if now - self.window >= MINUTE:
            self.window += MINUTE * ((now - self.window) // MINUTE)
            self.in_window = 0
        if (self.after_notified is not None and notified - self.notified_mark >= self.after_notified) or (
            self.after_succeeded is not None and succeeded - self.succeeded_mark >= self.after_succeeded
        ):
            self._rise(notified, succeeded)
        return max(0, int(self.per_minute) - self.in_window)

    def took(self, count: int) -> None:
        self.in_window += count

    def _rise(self, notified: int, succeeded: int) -> None:
        self.per_minute = min(self.per_minute * self.factor, self.maximum)
        self.notified_mark, self.succeeded_mark = notified, succeeded


@dataclass(frozen=True)
class Criterion:
    failure_type: str
    threshold: float
    min_executed: int

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Criterion:
        kind, action = config.get("failureType"), config.get("action", "CANCEL")
        if kind not in FAILURES or action != "CANCEL":
            raise ConfigError(f"an abort criterion takes failureType {'|'.join(FAILURES)} and action CANCEL")
        threshold, minimum = float(config["thresholdPercentage"]), int(config["minNumberOfExecutedThings"])
        if not 0 <= threshold <= 100 or minimum < 1:
            raise ConfigError("thresholdPercentage is 0 to 100 and minNumberOfExecutedThings at least 1")
        return cls(kind, threshold, minimum)

    def crossed(self, counts: Mapping[str, int]) -> str | None:
        """Why the job aborts with these execution counts by status, or None."""
        executed = sum(counts.get(status, 0) for status in EXECUTED)
        if executed < self.min_executed:
            return None
        failed = sum(counts.get(status, 0) for status in FAILURES[self.failure_type])
        share = 100.0 * failed / executed
        if share < self.threshold:
            return None
        return (
            f"aborted: {failed} of {executed} executed things failed ({self.failure_type}, {share:.1f}% >= "
            f"{self.threshold:g}%)"
        )


def abort_criteria(config: Mapping[str, Any] | None) -> tuple[Criterion, ...]:
    return tuple(Criterion.of(c) for c in (config or {}).get("criteriaList") or [])


@dataclass(frozen=True)
class Rules:
    """A job's rollout rate, abort criteria and in-progress timeout, read once from its configuration."""

    rate: Rate
    abort: tuple[Criterion, ...]
    timeout: float | None  # seconds an execution may stay IN_PROGRESS

    @classmethod
    def of(cls, config: Mapping[str, Any], now: float) -> Rules:
        """ConfigError for a configuration the service would refuse."""
        try:
            minutes = (config.get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes")
            return cls(
                Rate.of(config.get("jobExecutionsRolloutConfig"), now),
                abort_criteria(config.get("abortConfig")),
                float(minutes) * 60 if minutes else None,
            )
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"missing or malformed: {exc}") from None
