"""AWS IoT jobs as the local cloud keeps them: continuous jobs on thing groups (or things) and their executions.

A greengrassv2 deployment is an IoT job (the developer guide: "deployments use IoT jobs"; the service cancels
the previous job of a target when a new deployment replaces it). Devices take their executions through the jobs
data plane (the `iot-jobs-data` operations below, with the service model's names), as a core does through
MQTT's `$aws/things/<thing>/jobs/...` topics, which carry the same requests and answers.

A continuous job reaches a thing that is in its target when the thing asks, so a device that joins a group
later still gets the group's current job. No sockets and no boto here: `membership(thing)` says which target
ARNs a thing answers to (its own ARN and its groups'), and the server hands requests in as parameter dicts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.restjson import ServiceError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "REMOVED", "CANCELED", "TIMED_OUT"})
# What a device may set an execution to, per the UpdateJobExecution reference.
SETTABLE = frozenset({"IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"})
Membership = Callable[[str], set[str]]


@dataclass
class Execution:
    job_id: str
    thing: str
    thing_arn: str
    number: int
    status: str = "QUEUED"
    details: dict[str, str] = field(default_factory=dict)
    version: int = 1
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    updated_at: float = field(default_factory=time.time)

    def state(self) -> dict[str, Any]:
        return {"status": self.status, "statusDetails": dict(self.details), "versionNumber": self.version}

    def describe(self, document: str | None) -> dict[str, Any]:
        described: dict[str, Any] = {
            "jobId": self.job_id,
            "thingName": self.thing,
            "status": self.status,
            "statusDetails": dict(self.details),
            "queuedAt": self.queued_at,
            "lastUpdatedAt": self.updated_at,
            "versionNumber": self.version,
            "executionNumber": self.number,
        }
        if self.started_at is not None:
            described["startedAt"] = self.started_at
        if document is not None:
            described["jobDocument"] = document
        return described

    def summary(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "queuedAt": self.queued_at,
            "startedAt": self.started_at,
            "lastUpdatedAt": self.updated_at,
            "versionNumber": self.version,
            "executionNumber": self.number,
        }


@dataclass
class Job:
    job_id: str
    arn: str
    targets: list[str]
    document: str
    created: float = field(default_factory=time.time)
    status: str = "IN_PROGRESS"
    executions: dict[str, Execution] = field(default_factory=dict)


def _not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


class JobStore:
    def __init__(self, region: str, account: str, membership: Membership) -> None:
        self.region, self.account, self.membership = region, account, membership
        self.jobs: dict[str, Job] = {}
        self._numbers = 0

    # The service side ----------------------------------------------------------------------------------------

    def create_job(self, job_id: str, targets: list[str], document: dict[str, Any]) -> Job:
        arn = f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}"
        job = Job(job_id, arn, targets, json.dumps(document))
        self.jobs[job_id] = job
        return job

    def cancel_job(self, job_id: str) -> None:
        """Canceled without force: queued executions are canceled, an execution in progress may still finish."""
        job = self.jobs[job_id]
        job.status = "CANCELED"
        for execution in job.executions.values():
            if execution.status == "QUEUED":
                self._set(execution, "CANCELED", None)

    def executions_of(self, thing: str) -> list[tuple[Job, Execution]]:
        self._reach(thing)
        return [(job, job.executions[thing]) for job in self.jobs.values() if thing in job.executions]

    # The device side: the iot-jobs-data operations -------------------------------------------------------------

    def get_pending_job_executions(self, params: dict[str, Any]) -> dict[str, Any]:
        pending = self._pending(params["thingName"])
        return {
            "inProgressJobs": [e.summary() for _, e in pending if e.status == "IN_PROGRESS"],
            "queuedJobs": [e.summary() for _, e in pending if e.status == "QUEUED"],
        }

    def start_next_pending_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        """The oldest execution in progress, else the oldest queued one, which starts (IN_PROGRESS)."""
        pending = self._pending(params["thingName"])
        if not pending:
            return {}
        in_progress = [(j, e) for j, e in pending if e.status == "IN_PROGRESS"]
        job, execution = (in_progress or pending)[0]
        if execution.status == "QUEUED":
            self._set(execution, "IN_PROGRESS", params.get("statusDetails"))
        return {"execution": execution.describe(job.document)}

    def describe_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        job, execution = self._execution(params["thingName"], params["jobId"])
        return {"execution": execution.describe(job.document if params.get("includeJobDocument", True) else None)}

    def update_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        job, execution = self._execution(params["thingName"], params["jobId"])
        status = params["status"]
        expected = params.get("expectedVersion")
        if expected is not None and int(expected) != execution.version:
            raise ServiceError("ConflictException", f"the execution is at version {execution.version}, not {expected}")
        if status not in SETTABLE or execution.status in TERMINAL:
            raise ServiceError(
                "InvalidStateTransitionException",
                f"job execution {job.job_id} for {execution.thing} cannot go from {execution.status} to {status}",
            )
        self._set(execution, status, params.get("statusDetails"))
        output: dict[str, Any] = {}
        if params.get("includeJobExecutionState"):
            output["executionState"] = execution.state()
        if params.get("includeJobDocument"):
            output["jobDocument"] = job.document
        return output

    # ------------------------------------------------------------------------------------------------------------

    def _reach(self, thing: str) -> None:
        """Continuous jobs reach the things in their targets: an execution is queued for each new one."""
        targets = None
        for job in self.jobs.values():
            if job.status != "IN_PROGRESS" or thing in job.executions:
                continue
            if targets is None:
                targets = self.membership(thing)
            if targets.intersection(job.targets):
                self._numbers += 1
                arn = f"arn:aws:iot:{self.region}:{self.account}:thing/{thing}"
                job.executions[thing] = Execution(job.job_id, thing, arn, self._numbers)

    def _pending(self, thing: str) -> list[tuple[Job, Execution]]:
        executions = self.executions_of(thing)
        pending = [(j, e) for j, e in executions if e.status in ("QUEUED", "IN_PROGRESS")]
        return sorted(pending, key=lambda pair: (pair[1].queued_at, pair[1].number))

    def _execution(self, thing: str, job_id: str) -> tuple[Job, Execution]:
        job = self.jobs.get(job_id)
        if job is None or thing not in job.executions:
            raise _not_found(f"no execution of job {job_id} for {thing}")
        return job, job.executions[thing]

    @staticmethod
    def _set(execution: Execution, status: str, details: dict[str, str] | None) -> None:
        now = time.time()
        if status == "IN_PROGRESS" and execution.started_at is None:
            execution.started_at = now
        execution.status = status
        if details is not None:
            execution.details = dict(details)
        execution.version += 1
        execution.updated_at = now
