"""A local core as a core device of the local cloud: what the nucleus's deployment service does on a device,
through the same AWS APIs and in the same order, and nothing else (no shared objects with the cloud side).

1. Take the next deployment from the IoT jobs data plane (the nucleus does so over MQTT's jobs topics; the
   HTTP data plane carries the same requests): StartNextPendingJobExecution marks it IN_PROGRESS.
2. Resolve the deployment's components for this device's platform with greengrassv2 ResolveComponentCandidates,
   which returns their recipes.
3. Get credentials from the IoT credentials provider through the role alias (the token exchange service), then
   with them: S3 GetBucketLocation and GetObject for `s3://` artifacts (the nucleus's S3 downloader), ECR
   GetAuthorizationToken and a registry login before `docker:` images are pulled (the Docker application manager).
4. Apply the deployment to the core, wait for a stable state, roll back per the failure handling policy.
5. UpdateJobExecution with the nucleus's status details (`detailed-deployment-status`,
   `deployment-failure-cause`), and a fleet status report over MQTT
   (`$aws/things/<thing>/greengrassv2/health/json`). Between deployments a core reports as the nucleus's fleet
   status service does (FleetStatusService.handleServiceStateChange): at once when a component goes ERRORED (that
   component alone), or BROKEN with no deployment in progress, and otherwise not: a component that recovers
   stays UNHEALTHY in the cloud until the next report.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError
from docker.errors import DockerException

from localgg.core import GGC_VERSION, Core
from localgg.deployment import ConfigurationNotValid, DeploymentError, DeploymentRequest
from localgg.lifecycle import State
from localgg.mqtt import BridgeError
from localgg.recipe import Artifact, RecipeError, parse
from localgg.updates import UpdatePolicy
from recipeformat import digest
from recipeformat.platform import this_device

log = logging.getLogger("localcloud.device")
SETTLE_POLL = 1.0  # seconds between two looks at the components, as the nucleus's merger
UNHEALTHY = ("ERRORED", "BROKEN")
FLEET_STATUS_TOPIC = "$aws/things/{thing}/greengrassv2/health/json"
Publish = Callable[[str, int, bytes, bool], None]
RegistryLogin = Callable[[str, str, str], None]
# The nucleus retries a mismatched download 10 times a minute apart; here a few times at once (the same outcome).
DOWNLOAD_ATTEMPTS = 3
FAILURES = (DeploymentError, RecipeError, OSError, ClientError, BotoCoreError, DockerException)


class PreparationFailed(Exception):
    """The deployment failed before anything on the device changed (the nucleus: FAILED_NO_STATE_CHANGE).
    `errors` is the nucleus's error stack, least specific first, and `types` its error types (developer guide,
    "Detailed deployment error codes")."""

    def __init__(self, message: str, errors: tuple[str, ...] = (), types: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.errors, self.types = errors, types


def _s3_step(uri: str, call: str, denied_code: str, run: Callable[[], Any]) -> Any:
    """One S3 call of a download; refused, it fails the deployment with the nucleus's code for that call."""
    try:
        return run()
    except ClientError as exc:
        raise PreparationFailed(
            f"{uri}: {call} failed: {exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}",
            ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "S3_ERROR") + ((denied_code,) if _denied(exc) else ()),
            _error_types(exc),
        ) from None


def _written(out: IO[bytes], chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        out.write(chunk)
        yield chunk


def _denied(exc: ClientError) -> bool:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403 or exc.response["Error"]["Code"] in (
        "AccessDenied",
        "AccessDeniedException",
    )


def _error_types(exc: ClientError) -> tuple[str, ...]:
    """A dependency that could not be had; a permission error too when AWS refused the call."""
    return ("PERMISSION_ERROR", "DEPENDENCY_ERROR") if _denied(exc) else ("DEPENDENCY_ERROR",)


@dataclass(frozen=True)
class Connection:
    """What the installer writes into a core's configuration: where the cloud answers, and which role alias
    gives the device its AWS credentials."""

    greengrass: str  # the Greengrass data plane and the IoT jobs data plane
    credentials: str  # the IoT credentials provider
    aws: str  # S3 and ECR
    role_alias: str
    region: str
    # The device's identity towards the Greengrass endpoint and the credentials provider, standing in for the
    # certificate a real core presents over mutual TLS: a key pair that signs its requests (SigV4).
    identity: tuple[str, str] = ("device", "device")


@dataclass
class _Deployment:
    job_id: str
    document: dict[str, Any]
    wanted: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.wanted = {name: str(spec["version"]) for name, spec in (self.document.get("components") or {}).items()}

    @property
    def deployment_id(self) -> str:
        return str(self.document.get("deploymentId") or self.job_id)

    @property
    def configuration_arn(self) -> str:
        return str(self.document.get("configurationArn") or self.job_id)

    @property
    def target(self) -> str:
        """The thing group (or thing) the deployment is for: its configuration ARN without the revision."""
        return self.configuration_arn.rsplit(":", 1)[0]

    def update_config(self) -> dict[str, dict[str, Any]]:
        updates: dict[str, dict[str, Any]] = {}
        for name, spec in (self.document.get("components") or {}).items():
            change = spec.get("configurationUpdate") or {}
            if change:
                merge = change.get("merge")
                updates[name] = {"MERGE": json.loads(merge) if isinstance(merge, str) else merge or {}}
                updates[name]["RESET"] = list(change.get("reset") or [])
        return updates


def _union(roots: dict[str, dict[str, str]]) -> dict[str, str]:
    """Every target's root components together; two targets that want different versions of one component
    cannot both be served, and the deployment fails before anything changes (as the nucleus's resolution does)."""
    wanted: dict[str, str] = {}
    for target, components in roots.items():
        for name, version in components.items():
            if wanted.setdefault(name, version) != version:
                raise PreparationFailed(f"{name}: {target} wants {version}, another target {wanted[name]}")
    return wanted


class DeviceAgent:
    def __init__(
        self,
        core: Core,
        connection: Connection,
        publish: Publish,
        registry_login: RegistryLogin,
        workdir: Path,
        platform: dict[str, str] | None = None,
        settle_timeout: float = 300.0,
    ) -> None:
        self.core, self.connection, self.publish, self.registry_login = core, connection, publish, registry_login
        self.platform = platform or this_device()
        self.recipe_dir, self.artifact_dir = workdir / "recipes", workdir / "artifacts"
        self.settle_timeout = settle_timeout
        session = boto3.Session(
            region_name=connection.region,
            aws_access_key_id=connection.identity[0],
            aws_secret_access_key=connection.identity[1],
        )
        self.jobs = session.client("iot-jobs-data", endpoint_url=connection.greengrass)
        self.greengrass = session.client("greengrassv2", endpoint_url=connection.greengrass)
        self.installed_by: dict[str, str] = {}  # component -> the configuration ARN that put it there
        # Each target's root components, as the nucleus keeps them per thing group: a deployment replaces its
        # own target's set, and the device runs the union of all of them.
        self.roots: dict[str, dict[str, str]] = {}
        self._sequence = 0
        self._launched = False
        self._deploying = False
        core.state_listeners.append(self._state_changed)

    @property
    def thing(self) -> str:
        return self.core.thing_name

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                if not self._launched:  # a core reports as it starts, before it takes any deployment
                    self.report_status("NUCLEUS_LAUNCH")
                    self._launched = True
                await self.poll_once()
            except (ClientError, BotoCoreError, BridgeError) as exc:  # the cloud did not answer: a device keeps polling
                log.warning("cannot reach the cloud: %s", exc)
            await asyncio.sleep(interval)

    async def poll_once(self) -> str | None:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            None, lambda: self.jobs.start_next_pending_job_execution(thingName=self.thing)
        )
        execution = answer.get("execution")
        if not execution:
            return None
        deployment = _Deployment(execution["jobId"], json.loads(execution.get("jobDocument") or "{}"))
        self._deploying = True
        try:
            return await self._take(deployment)
        finally:
            self._deploying = False

    async def _take(self, deployment: _Deployment) -> str:
        loop = asyncio.get_running_loop()
        previous = {name: recipe.version for name, recipe in self.core.recipes.items()}
        roots = {**self.roots, deployment.target: deployment.wanted}
        try:
            wanted = _union(roots)
            await loop.run_in_executor(None, self._prepare, wanted)
        except PreparationFailed as exc:
            return self._finish(deployment, "FAILED", "FAILED_NO_STATE_CHANGE", [str(exc)], exc.errors, exc.types)
        except FAILURES as exc:
            return self._finish(deployment, "FAILED", "FAILED_NO_STATE_CHANGE", [str(exc)])
        try:
            await self._apply(deployment, wanted, deployment.update_config())
            broken = await self._settle(deployment.wanted)
        except ConfigurationNotValid as exc:  # asked before anything changed: nothing to roll back
            errors = ("DEPLOYMENT_FAILURE", "COMPONENT_CONFIGURATION_NOT_VALID")
            return self._finish(deployment, "FAILED", "FAILED_NO_STATE_CHANGE", [str(exc)], errors)
        except FAILURES as exc:
            broken = [f"the deployment could not be applied: {exc}"]
        if not broken:
            self.roots = roots
            self.installed_by.update(dict.fromkeys(deployment.wanted, deployment.configuration_arn))
            return self._finish(deployment, "SUCCEEDED", "SUCCESSFUL", [])
        detailed = await self._handle_failure(deployment, previous, broken)
        if detailed == "FAILED_ROLLBACK_NOT_REQUESTED":
            self.roots = roots  # left as it is: the new set stays
        return self._finish(deployment, "FAILED", detailed, broken)

    def _finish(
        self,
        deployment: _Deployment,
        status: str,
        detailed: str,
        causes: list[str],
        errors: tuple[str, ...] = (),
        types: tuple[str, ...] = (),
    ) -> str:
        details = {"detailed-deployment-status": detailed}
        if causes:
            details["deployment-failure-cause"] = "; ".join(causes)
        if errors:
            details["deployment-error-stack"] = json.dumps(list(errors))
            details["deployment-error-types"] = json.dumps(list(types))
        self.jobs.update_job_execution(
            jobId=deployment.job_id, thingName=self.thing, status=status, statusDetails=details
        )
        self.report_status(
            "THING_GROUP_DEPLOYMENT",
            {
                "status": status,
                "fleetConfigurationArnForStatus": deployment.configuration_arn,
                "statusDetails": {
                    "detailedStatus": detailed,
                    "failureCause": details.get("deployment-failure-cause", ""),
                    **({"errorStack": list(errors), "errorTypes": list(types)} if errors else {}),
                },
            },
        )
        return status

    async def _handle_failure(self, deployment: _Deployment, previous: dict[str, str], broken: list[str]) -> str:
        """The deployment's failure handling policy, applied; returns the nucleus's detailed status for it."""
        if deployment.document.get("failureHandlingPolicy", "ROLLBACK") == "DO_NOTHING":
            log.error("deployment %s failed: %s; left as it is (DO_NOTHING)", deployment.job_id, broken)
            return "FAILED_ROLLBACK_NOT_REQUESTED"
        log.error("deployment %s failed: %s; rolling back", deployment.job_id, broken)
        try:
            await self._apply(deployment, previous, {})
            still_broken = await self._settle(previous)
        except FAILURES as exc:
            still_broken = [str(exc)]
        if still_broken:
            log.error("rollback of %s failed: %s", deployment.job_id, still_broken)
            return "FAILED_UNABLE_TO_ROLLBACK"
        return "FAILED_ROLLBACK_COMPLETE"

    # Preparing: recipes from the cloud, artifacts with the device's own credentials --------------------------

    def _prepare(self, wanted: dict[str, str]) -> None:
        """Recipes into the recipe folder, artifacts into <artifacts>/<name>/<version>/, registry login."""
        candidates = [
            {"componentName": name, "componentVersion": version, "versionRequirements": {"deployment": f"={version}"}}
            for name, version in wanted.items()
        ]
        if not candidates:
            return
        try:
            resolved = self.greengrass.resolve_component_candidates(
                platform={"name": self.platform["os"], "attributes": self.platform}, componentCandidates=candidates
            )["resolvedComponentVersions"]
        except ClientError as exc:
            raise PreparationFailed(f"the components cannot be resolved: {exc.response['Error']['Message']}") from None
        self.recipe_dir.mkdir(parents=True, exist_ok=True)
        aws: dict[str, Any] = {}
        for component in resolved:
            name, version = component["componentName"], component["componentVersion"]
            path = self.recipe_dir / f"{name}-{version}.json"
            path.write_bytes(component["recipe"])
            for artifact in parse(path).artifacts:
                if artifact.uri.startswith("s3://"):
                    self._download(aws, artifact, self.artifact_dir / name / version / artifact.filename)
                elif artifact.docker_image is not None:
                    self._login(aws, artifact.docker_image.split("/", 1)[0])

    def _client(self, clients: dict[str, Any], service: str) -> Any:
        """A client with the role alias's credentials, fetched once per deployment, as the token exchange
        service hands them to the nucleus's downloaders."""
        if service not in clients:
            if "session" not in clients:
                clients["session"] = self._session()
            clients[service] = clients["session"].client(service, endpoint_url=self.connection.aws)
        return clients[service]

    def _session(self) -> boto3.Session:
        url = f"{self.connection.credentials}/role-aliases/{self.connection.role_alias}/credentials"
        signed = AWSRequest("GET", url, headers={"x-amzn-iot-thingname": self.thing})
        SigV4Auth(Credentials(*self.connection.identity), "iot", self.connection.region).add_auth(signed)
        request = urllib.request.Request(url, headers=dict(signed.headers.items()))
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                credentials = json.load(reply)["credentials"]
        except OSError as exc:
            raise PreparationFailed(
                f"no AWS credentials through role alias {self.connection.role_alias}: {exc}",
                ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "GET_CREDENTIALS_ERROR"),
                ("DEPENDENCY_ERROR",),
            ) from None
        return boto3.Session(
            region_name=self.connection.region,
            aws_access_key_id=credentials["accessKeyId"],
            aws_secret_access_key=credentials["secretAccessKey"],
            aws_session_token=credentials["sessionToken"],
        )

    def _download(self, clients: dict[str, Any], artifact: Artifact, target: Path) -> None:
        """The nucleus's S3 downloader: the object checked against the recipe's digest as it arrives (a recipe from
        the cloud always has one), kept only when it matches, fetched again a few times when it does not."""
        uri = artifact.uri
        if artifact.algorithm != digest.ALGORITHM or not artifact.digest:
            raise PreparationFailed(
                f"{uri}: the recipe has no {digest.ALGORITHM} digest for it",
                ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "RECIPE_MISSING_ARTIFACT_HASH_ALGORITHM"),
            )
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3 = self._client(clients, "s3")
        # The nucleus's S3 downloader asks where the bucket is before it reads, and names which call was refused.
        _s3_step(
            uri,
            "GetBucketLocation",
            "S3_GET_BUCKET_LOCATION_ACCESS_DENIED",
            lambda: s3.get_bucket_location(Bucket=bucket),
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.download")
        for _ in range(DOWNLOAD_ATTEMPTS):
            get = _s3_step(
                uri, "GetObject", "S3_GET_OBJECT_ACCESS_DENIED", lambda: s3.get_object(Bucket=bucket, Key=key)
            )
            with partial.open("wb") as out:
                got = digest.of_chunks(_written(out, get["Body"].iter_chunks(digest.CHUNK)))
            if got == artifact.digest:
                partial.replace(target)
                return
            partial.unlink()
        raise PreparationFailed(
            f"{uri}: integrity check failed {DOWNLOAD_ATTEMPTS} times: its SHA-256 is {got}, the recipe says "
            f"{artifact.digest}",
            ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "ARTIFACT_CHECKSUM_MISMATCH"),
        )

    def _login(self, clients: dict[str, Any], registry: str) -> None:
        try:
            answer = self._client(clients, "ecr").get_authorization_token()
        except ClientError as exc:
            raise PreparationFailed(
                f"no registry login for {registry}: {exc.response['Error'].get('Message') or exc}",
                ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "DOCKER_ERROR", "GET_ECR_CREDENTIAL_ERROR"),
                _error_types(exc),
            ) from None
        token = answer["authorizationData"][0]["authorizationToken"]
        username, _, password = base64.b64decode(token).decode().partition(":")
        self.registry_login(registry, username, password)

    # Applying ------------------------------------------------------------------------------------------------

    async def _apply(
        self, deployment: _Deployment, wanted: dict[str, str], update_config: dict[str, dict[str, Any]]
    ) -> None:
        remove = tuple(name for name in self.core.recipes if name not in wanted)
        request = DeploymentRequest(
            self.recipe_dir,
            self.artifact_dir,
            wanted,
            remove,
            update_config,
            deployment.deployment_id,
            UpdatePolicy.of(deployment.document),
        )
        await self.core.deploy(request)

    async def _settle(self, wanted: dict[str, str]) -> list[str]:
        """The nucleus's rule for a deployment that held (DeploymentConfigMerger.waitForServicesToStart): it looks
        right after the merge and then once a second (WAIT_SVC_START_POLL_INTERVAL_MILLISEC), and the deployment
        holds at the first look that finds every component RUNNING or FINISHED; one BROKEN since the merge fails
        it. There is no stability window: a Run that lives past a look is a success here, and UNHEALTHY in its
        fleet status afterwards (the tooling watches for that); one that dies before the next look rarely is.
        `settle_timeout` only bounds a wait the nucleus leaves to the steps' own timeouts."""
        deadline = time.monotonic() + self.settle_timeout
        while True:
            components = {name: self.core.components[name] for name in wanted}
            broken = [
                f"{name} {self.core.recipes[name].version} is BROKEN after {component.errors} error(s); "
                f"see logs/{name}.log"
                for name, component in components.items()
                if component.state is State.BROKEN
            ]
            if broken:
                return broken
            waiting = [name for name, c in components.items() if c.state not in (State.RUNNING, State.FINISHED)]
            if not waiting:
                return []
            if time.monotonic() >= deadline:
                return [f"{name} did not start within {self.settle_timeout:.0f}s" for name in waiting]
            await asyncio.sleep(SETTLE_POLL)

    # Fleet status ----------------------------------------------------------------------------------------------

    def _states(self) -> list[tuple[str, str, str]]:
        """(name, version, state) of each component, as the core itself reports them."""
        return [(name, c["version"], c["state"]) for name, c in self.core.status()["components"].items()]

    def _state_changed(self, name: str, state: State) -> None:
        try:
            if state is State.ERRORED:
                self.report_status("ERRORED_COMPONENT", only=name)
            elif state is State.BROKEN and not self._deploying:
                self.report_status("BROKEN_COMPONENT")
        except BridgeError as exc:  # offline: the nucleus drops event reports it cannot send
            log.warning("fleet status not sent: %s", exc)

    def report_status(self, trigger: str, deployment: dict[str, Any] | None = None, only: str | None = None) -> None:
        """A fleet status report: COMPLETE, with the nucleus itself among the components as a real core lists
        it, or PARTIAL with the component `only`; the overall status is always the whole device's."""
        states = self._states()
        components = [
            {
                "componentName": name,
                "version": version,
                "status": state,
                "isRoot": True,
                "fleetConfigArns": [self.installed_by[name]] if name in self.installed_by else [],
            }
            for name, version, state in states
            if only in (None, name)
        ]
        if only is None:
            nucleus = {"componentName": "aws.greengrass.Nucleus", "version": GGC_VERSION, "status": "RUNNING"}
            components.insert(0, {**nucleus, "isRoot": False, "fleetConfigArns": []})
        self._sequence += 1
        report: dict[str, Any] = {
            "ggcVersion": GGC_VERSION,
            "platform": self.platform["os"],
            "architecture": self.platform["architecture"],
            "thing": self.thing,
            "overallDeviceStatus": "UNHEALTHY" if any(s in UNHEALTHY for _, _, s in states) else "HEALTHY",
            "sequenceNumber": self._sequence,
            "timestamp": int(time.time() * 1000),
            "messageType": "COMPLETE" if only is None else "PARTIAL",
            "trigger": trigger,
            "components": components,
        }
        if deployment is not None:
            report["deploymentInformation"] = deployment
        self.publish(FLEET_STATUS_TOPIC.format(thing=self.thing), 1, json.dumps(report).encode(), False)
