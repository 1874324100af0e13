"""The rollout presets (`ROLLOUT=`): how fast a deployment reaches the thing group and when it stops itself, as the
IoT job of a thing-group deployment carries them (`iotJobConfiguration`; the IoT developer guide's "Job rollout,
scheduling, and abort configurations"). Rates are devices notified a minute. A new preset is one entry in PRESETS;
the README's table is checked against `row()` (tests/scripts/test_presets.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SERVICE_CEILING = 1000  # jobExecutionsRolloutConfig.maximumPerMinute's largest value


@dataclass(frozen=True)
class Ramp:
    """Start at `base` a minute, multiply by `factor` after every `every` devices `counted` (succeeded or notified)."""

    base: int
    factor: float
    every: int
    counted: Literal["succeeded", "notified"]


@dataclass(frozen=True)
class Abort:
    """Cancel the job once `percent` of the executions failed, counted from `after` executed devices on."""

    percent: float
    after: int


@dataclass(frozen=True)
class Preset:
    name: str
    maximum: int  # devices notified a minute, at most
    ramp: Ramp | None = None
    abort: Abort | None = None

    def job_configuration(self) -> dict[str, Any]:
        rollout: dict[str, Any] = {"maximumPerMinute": self.maximum}
        if self.ramp is not None:
            counted = "numberOfSucceededThings" if self.ramp.counted == "succeeded" else "numberOfNotifiedThings"
            rollout["exponentialRate"] = {
                "baseRatePerMinute": self.ramp.base,
                "incrementFactor": self.ramp.factor,
                "rateIncreaseCriteria": {counted: self.ramp.every},
            }
        job: dict[str, Any] = {"jobExecutionsRolloutConfig": rollout}
        if self.abort is not None:
            criterion = {
                "failureType": "ALL",
                "action": "CANCEL",
                "thresholdPercentage": self.abort.percent,
                "minNumberOfExecutedThings": self.abort.after,
            }
            job["abortConfig"] = {"criteriaList": [criterion]}
        return job

    def row(self) -> str:
        """Its row in the README's table of presets."""
        name = f"`{self.name}`" + (" (default)" if self.name == DEFAULT else "")
        if self.ramp is None:
            ceiling = " (the service's ceiling)" if self.maximum == SERVICE_CEILING else ""
            rollout = f"{self.maximum:,} a minute{ceiling}"
        else:
            ramp = self.ramp
            rollout = (
                f"{ramp.base:,} a minute, x{ramp.factor:g} after every {ramp.every:,} devices {ramp.counted}, "
                f"at most {self.maximum:,} a minute"
            )
        abort = f"{self.abort.percent:g}% of at least {self.abort.after:,} executed" if self.abort else "none"
        return f"| {name} | {rollout} | {abort} |"


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("canary", 500, Ramp(5, 2.0, 10, "succeeded"), Abort(10.0, 10)),
        Preset("fast", SERVICE_CEILING, Ramp(50, 2.0, 200, "notified"), Abort(20.0, 50)),
        # No abort: for a group small enough to watch, a fix that must reach everyone, or a removal (`make destroy`).
        Preset("all", SERVICE_CEILING),
    )
}
DEFAULT = "canary"
