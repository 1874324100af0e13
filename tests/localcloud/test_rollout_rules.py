"""The rules of a job's rollout, abort, throttling and hollow-device faults, as plain state machines with a clock
the test holds: the IoT developer guide's "Job rollout, scheduling, and abort configurations" (rates a minute,
exponential increase on notified or succeeded things, abort on a share of failures after a minimum of executed
things) and the limits CreateJob's reference gives (maximumPerMinute 1 to 1000, incrementFactor 1.1 to 5)."""

from __future__ import annotations

import pytest

from localcloud.hollow import Faults, FaultSpecError
from localcloud.rollout import ConfigError, Criterion, Rate, Rules, abort_criteria
from localcloud.throttle import Throttle, ThrottleSpecError


def test_a_constant_rate_allows_its_number_each_minute() -> None:
    rate = Rate.of({"maximumPerMinute": 3}, now=0.0)
    assert rate.room(0.0, 0, 0) == 3
    rate.took(3)
    assert rate.room(59.9, 3, 0) == 0
    assert rate.room(60.0, 3, 0) == 3  # a new minute
    assert Rate.of(None, 0.0).room(0.0, 0, 0) == 1000  # the default


def test_an_exponential_rate_rises_by_its_factor_up_to_its_maximum() -> None:
    config = {
        "exponentialRate": {
            "baseRatePerMinute": 2,
            "incrementFactor": 3,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
        },
        "maximumPerMinute": 10,
    }
    rate = Rate.of(config, now=0.0)
    assert rate.room(0.0, 0, 0) == 2
    rate.took(2)
    assert rate.room(60.0, 2, 0) == 6  # 2 more notified: 2 x 3
    rate.took(6)
    assert rate.room(120.0, 8, 0) == 10  # 18, capped


def test_a_rate_rising_on_successes_waits_for_them() -> None:
    config = {
        "exponentialRate": {
            "baseRatePerMinute": 5,
            "incrementFactor": 2,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 5},
        },
        "maximumPerMinute": 100,
    }
    rate = Rate.of(config, now=0.0)
    rate.took(rate.room(0.0, 0, 0))
    assert rate.room(60.0, 5, 4) == 5  # notified, not yet succeeded
    assert rate.room(60.0, 5, 5) == 10


@pytest.mark.parametrize(
    "config",
    [
        {"maximumPerMinute": 0},
        {"maximumPerMinute": 1001},
        {"exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 1.0, "rateIncreaseCriteria": {}}},
        {
            "exponentialRate": {
                "baseRatePerMinute": 1,
                "incrementFactor": 2,
                "rateIncreaseCriteria": {"numberOfNotifiedThings": 1, "numberOfSucceededThings": 1},
            }
        },
    ],
)
def test_configurations_the_service_refuses_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Rate.of(config, now=0.0)


def test_an_abort_criterion_waits_for_its_minimum_then_compares_the_share() -> None:
    (criterion,) = abort_criteria(
        {
            "criteriaList": [
                {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 20, "minNumberOfExecutedThings": 5}
            ]
        }
    )
    assert criterion.crossed({"FAILED": 4}) is None  # 4 executed: below the minimum
    assert criterion.crossed({"FAILED": 1, "SUCCEEDED": 9}) is None  # 10%
    assert criterion.crossed({"FAILED": 2, "SUCCEEDED": 8, "QUEUED": 90}) is not None  # 20% of the executed
    assert criterion.crossed({"TIMED_OUT": 5, "SUCCEEDED": 5}) is None  # not its failure type
    every = Criterion.of({"failureType": "ALL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2})
    assert every.crossed({"TIMED_OUT": 1, "REJECTED": 1}) is not None
    with pytest.raises(ConfigError):
        Criterion.of({"failureType": "LATE", "thresholdPercentage": 1, "minNumberOfExecutedThings": 1})


def test_throttling_allows_its_rate_and_says_how_long_to_wait() -> None:
    now = [0.0]
    throttle = Throttle.parse("DescribeJob=2,greengrassv2=1", clock=lambda: now[0])
    assert [throttle.take("iot", "DescribeJob") for _ in range(3)] == [0.0, 0.0, 0.5]
    assert throttle.take("iot", "ListJobs") == 0.0  # no limit of its own, nor its service's
    assert throttle.take("greengrassv2", "ListCoreDevices") == 0.0
    assert throttle.take("greengrassv2", "GetDeployment") == pytest.approx(1.0)  # the service's bucket
    now[0] = 1.0
    assert throttle.take("greengrassv2", "GetDeployment") == 0.0
    with pytest.raises(ThrottleSpecError):
        Throttle.parse("DescribeJob=fast")


def test_faults_are_drawn_per_device_from_a_seed() -> None:
    faults = Faults.parse("failing=0.25,offline=0.25", seed=7)
    drawn = [faults.of(index) for index in range(2000)]
    assert drawn == [Faults.parse("failing=0.25,offline=0.25", seed=7).of(index) for index in range(2000)]
    assert 400 < drawn.count("failing") < 600 and 400 < drawn.count("offline") < 600
    assert drawn.count(None) + drawn.count("failing") + drawn.count("offline") == 2000
    for bad in ("failing=2", "melting=0.1", "failing=0.6,offline=0.6"):
        with pytest.raises(FaultSpecError):
            Faults.parse(bad)


def test_a_jobs_rules_are_read_once_and_a_malformed_part_is_refused() -> None:
    """CreateDeployment's iotJobConfiguration: rate, abort criteria and the in-progress timeout (in minutes)."""
    rules = Rules.of({"timeoutConfig": {"inProgressTimeoutInMinutes": 30}}, now=0.0)
    assert (rules.timeout, rules.abort, rules.rate.room(0.0, 0, 0)) == (1800.0, (), 1000)
    for malformed in (
        {"timeoutConfig": {"inProgressTimeoutInMinutes": "soon"}},
        {"jobExecutionsRolloutConfig": {"exponentialRate": {"incrementFactor": 2}}},
        {"abortConfig": {"criteriaList": [{"failureType": "ALL"}]}},
    ):
        with pytest.raises(ConfigError):
            Rules.of(malformed, now=0.0)
