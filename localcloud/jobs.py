"""AWS IoT jobs as the local cloud keeps them: continuous jobs on thing groups (or things) and their executions.

A greengrassv2 deployment is an IoT job (the developer guide: "deployments use IoT jobs"; the service cancels
the previous job of a target when a new deployment replaces it). Devices take their executions through the jobs
data plane (the `iot-jobs-data` operations below, with the service model's names), as a core does through
MQTT's `$aws/things/<thing>/jobs/...` topics, which carry the same requests and answers. The tooling reads a job
through IoT's DescribeJob and ListJobExecutionsForJob, and may cancel it (CancelJob).

A continuous job reaches every thing in its target, those that join later included, at its rollout rate; it is
canceled when an abort criterion is met, and an execution in progress longer than the job's timeout is
TIMED_OUT (localcloud.rollout). `advance()` moves all of that forward to `clock()`; the stack calls it a few times
a second and every operation calls it first. No sockets and no boto here: `members(target)` says which things a
target ARN holds (a group's members, or the thing itself), and requests come in as parameter dicts.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from localcloud.restjson import ServiceError
from localcloud.rollout import Rules

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "REMOVED", "CANCELED", "TIMED_OUT"})
# What a device may set an execution to, per the UpdateJobExecution reference.
SETTABLE = frozenset({"IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"})
Members = Callable[[str], Iterable[str]]
Clock = Callable[[], float]
Notify = Callable[[str], None]
LIST_PAGE = 250  # ListJobExecutionsForJob's largest maxResults
ADVANCE_EVERY = 0.1  # real seconds: reading a large group's members on every call would cost more than it tells


@dataclass
class Execution:
    job_id: str
    thing: str
    thing_arn: str
    number: int
    queued_at: float
    status: str = "QUEUED"
    details: dict[str, str] = field(default_factory=dict)
    version: int = 1
    started_at: float | None = None
    updated_at: float = 0.0

    def state(self) -> dict[str, Any]:
        return {"status": self.status, "statusDetails": dict(self.details), "versionNumber": self.version}

    def describe(self, document: str | None = None, control_plane: bool = False) -> dict[str, Any]:
        """The jobs data plane's JobExecution (with its document, if given), or IoT's (DescribeJobExecution)."""
        described: dict[str, Any] = {
            "jobId": self.job_id,
            **(
                {
                    "thingArn": self.thing_arn,
                    "forceCanceled": False,
                    "statusDetails": {"detailsMap": dict(self.details)},
                }
                if control_plane
                else {"thingName": self.thing, "statusDetails": dict(self.details)}
            ),
            "status": self.status,
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

    def for_job(self) -> dict[str, Any]:
        """ListJobExecutionsForJob's JobExecutionSummaryForJob."""
        summary = {
            "status": self.status,
            "queuedAt": self.queued_at,
            "lastUpdatedAt": self.updated_at,
            "executionNumber": self.number,
            "retryAttempt": 0,
        }
        if self.started_at is not None:
            summary["startedAt"] = self.started_at
        return {"thingArn": self.thing_arn, "jobExecutionSummary": summary}


@dataclass
class Job:
    job_id: str
    arn: str
    targets: list[str]
    document: str
    created: float
    config: dict[str, Any]  # the job's jobExecutionsRolloutConfig, abortConfig and timeoutConfig, as given
    rules: Rules  # the same, read
    status: str = "IN_PROGRESS"
    comment: str = ""
    updated: float = 0.0
    executions: dict[str, Execution] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def describe(self) -> dict[str, Any]:
        """DescribeJob's Job: a continuous job on its targets, with its execution counts."""
        process = {f"numberOf{status.title().replace('_', '')}Things": self.counts[status] for status in _COUNTED}
        described = {
            "jobArn": self.arn,
            "jobId": self.job_id,
            "targetSelection": "CONTINUOUS",
            "status": self.status,
            "forceCanceled": False,
            "targets": list(self.targets),
            "createdAt": self.created,
            "lastUpdatedAt": self.updated,
            "jobProcessDetails": {"processingTargets": [], **process},
            "isConcurrent": False,
            **{k: v for k, v in self.config.items() if v},
        }
        if self.comment:
            described["comment"] = self.comment
        return described


_COUNTED = ("CANCELED", "SUCCEEDED", "FAILED", "REJECTED", "QUEUED", "IN_PROGRESS", "REMOVED", "TIMED_OUT")


def _not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


class JobStore:
    def __init__(
        self,
        region: str,
        account: str,
        members: Members,
        clock: Clock = time.time,
        notify: Notify = lambda thing: None,
    ) -> None:
        """`notify(thing)`: a thing has a new pending execution, as `$aws/things/<thing>/jobs/notify-next` says."""
        self.region, self.account, self.members, self.clock, self.notify = region, account, members, clock, notify
        self.jobs: dict[str, Job] = {}
        self._numbers = 0
        self._advanced = float("-inf")

    # The service side ----------------------------------------------------------------------------------------

    def create_job(
        self, job_id: str, targets: list[str], document: dict[str, Any], config: dict[str, Any], rules: Rules
    ) -> Job:
        """A continuous job; `config` holds the job's jobExecutionsRolloutConfig, abortConfig and timeoutConfig,
        `rules` what they say (Rules.of, made on this store's clock)."""
        now = self.clock()
        job = Job(
            job_id,
            f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}",
            targets,
            json.dumps(document),
            now,
            {k: config.get(k) for k in ("jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig")},
            rules,
            updated=now,
        )
        self.jobs[job_id] = job
        self.advance(force=True)
        return job

    def cancel(self, job_id: str, comment: str = "", force: bool = False) -> None:
        """Queued executions are canceled; one in progress may still finish, unless `force`."""
        job = self.jobs[job_id]
        if job.status != "IN_PROGRESS":
            return
        job.status, job.comment, job.updated = "CANCELED", comment, self.clock()
        for execution in job.executions.values():
            if execution.status == "QUEUED" or (force and execution.status == "IN_PROGRESS"):
                self._set(job, execution, "CANCELED", None)

    def executions_of(self, thing: str) -> list[tuple[Job, Execution]]:
        self.advance()
        return [(job, job.executions[thing]) for job in self.jobs.values() if thing in job.executions]

    def advance(self, force: bool = False) -> None:
        """Time-outs, abort criteria and notifications, as of now."""
        if not force and time.monotonic() - self._advanced < ADVANCE_EVERY:
            return
        self._advanced = time.monotonic()
        now = self.clock()
        for job in self.jobs.values():
            timeout = job.rules.timeout
            if timeout is not None and job.counts["IN_PROGRESS"]:
                for execution in job.executions.values():
                    if execution.status == "IN_PROGRESS" and now - (execution.started_at or now) > timeout:
                        self._set(job, execution, "TIMED_OUT", None)
            if job.status != "IN_PROGRESS":
                continue
            for criterion in job.rules.abort:
                reason = criterion.crossed(job.counts)
                if reason:
                    self.cancel(job.job_id, reason)
                    break
            else:
                self._reach(job, now)

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
            self._set(job, execution, "IN_PROGRESS", params.get("statusDetails"))
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
        self._set(job, execution, status, params.get("statusDetails"))
        output: dict[str, Any] = {}
        if params.get("includeJobExecutionState"):
            output["executionState"] = execution.state()
        if params.get("includeJobDocument"):
            output["jobDocument"] = job.document
        return output

    # ------------------------------------------------------------------------------------------------------------

    def _reach(self, job: Job, now: float) -> None:
        """Queue an execution for each thing of the job's targets that has none, as far as the rollout allows."""
        notified = len(job.executions)
        room = job.rules.rate.room(now, notified, job.counts["SUCCEEDED"])
        if room <= 0:
            return
        fresh: list[str] = []
        for target in job.targets:
            fresh += (thing for thing in self.members(target) if thing not in job.executions)
        for thing in dict.fromkeys(fresh):  # a thing in two targets is notified once
            if room <= 0:
                break
            self._numbers += 1
            arn = f"arn:aws:iot:{self.region}:{self.account}:thing/{thing}"
            job.executions[thing] = Execution(job.job_id, thing, arn, self._numbers, now, updated_at=now)
            job.counts["QUEUED"] += 1
            job.rules.rate.took(1)
            room -= 1
            self.notify(thing)

    def job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise _not_found(f"job {job_id} does not exist")
        return self.jobs[job_id]

    def _pending(self, thing: str) -> list[tuple[Job, Execution]]:
        executions = self.executions_of(thing)
        pending = [(j, e) for j, e in executions if e.status in ("QUEUED", "IN_PROGRESS")]
        return sorted(pending, key=lambda pair: (pair[1].queued_at, pair[1].number))

    def _execution(self, thing: str, job_id: str) -> tuple[Job, Execution]:
        self.advance()
        job = self.jobs.get(job_id)
        if job is None or thing not in job.executions:
            raise _not_found(f"no execution of job {job_id} for {thing}")
        return job, job.executions[thing]

    def _set(self, job: Job, execution: Execution, status: str, details: dict[str, str] | None) -> None:
        now = self.clock()
        if status == "IN_PROGRESS" and execution.started_at is None:
            execution.started_at = now
        job.counts[execution.status] -= 1
        job.counts[status] += 1
        execution.status = status
        if details is not None:
            execution.details = dict(details)
        execution.version += 1
        execution.updated_at = job.updated = now


def _page(items: list[dict[str, Any]], key: str, params: dict[str, Any]) -> dict[str, Any]:
    start, size = int(params.get("nextToken") or 0), min(int(params.get("maxResults") or LIST_PAGE), LIST_PAGE)
    output: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        output["nextToken"] = str(start + size)
    return output


class IotJobs:
    """IoT's job operations (the control plane, with its API reference's shapes), over the store's jobs."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def describe_job(self, params: dict[str, Any]) -> dict[str, Any]:
        self.store.advance()
        return {"job": self.store.job(params["jobId"]).describe()}

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        self.store.advance()
        group = params.get("thingGroupName")
        chosen = [
            job
            for job in self.store.jobs.values()
            if (not params.get("status") or job.status == params["status"])
            and params.get("targetSelection", "CONTINUOUS") == "CONTINUOUS"
            and (not group or any(t.endswith(f":thinggroup/{group}") for t in job.targets))
        ]
        summaries = [
            {
                "jobArn": job.arn,
                "jobId": job.job_id,
                "targetSelection": "CONTINUOUS",
                "status": job.status,
                "createdAt": job.created,
                "lastUpdatedAt": job.updated,
                "isConcurrent": False,
            }
            for job in sorted(chosen, key=lambda j: j.created, reverse=True)
        ]
        return _page(summaries, "jobs", params)

    def list_job_executions_for_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """In execution order; `status` filters, `maxResults` (at most 250) pages."""
        self.store.advance()
        status = params.get("status")
        job = self.store.job(params["jobId"])
        chosen = [e.for_job() for e in job.executions.values() if not status or e.status == status]
        return _page(chosen, "executionSummaries", params)

    def list_job_executions_for_thing(self, params: dict[str, Any]) -> dict[str, Any]:
        status, job_id = params.get("status"), params.get("jobId")
        chosen = [
            {"jobId": job.job_id, "jobExecutionSummary": execution.for_job()["jobExecutionSummary"]}
            for job, execution in self.store.executions_of(params["thingName"])
            if (not status or execution.status == status) and (not job_id or job.job_id == job_id)
        ]
        return _page(chosen, "executionSummaries", params)

    def describe_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        self.store.advance()
        job = self.store.job(params["jobId"])
        execution = job.executions.get(params["thingName"])
        if execution is None:
            raise _not_found(f"no execution of job {job.job_id} for {params['thingName']}")
        return {"execution": execution.describe(control_plane=True)}

    def cancel_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.store.job(params["jobId"])
        if job.status != "IN_PROGRESS":
            raise ServiceError("InvalidRequestException", f"job {job.job_id} is {job.status}: it cannot be canceled")
        self.store.cancel(job.job_id, str(params.get("comment") or ""), bool(params.get("force")))
        return {"jobArn": job.arn, "jobId": job.job_id}
