"""A local AWS IoT Greengrass v2 service: component versions, deployments, core devices, and the data plane.

The operations the deploy pipeline and a core use, with the service's shapes and error codes (a duplicate
version is a ConflictException, an unknown ARN a ResourceNotFoundException). As in AWS, a deployment is an IoT
job on its target (localcloud.jobs), a core resolves its components with ResolveComponentCandidates, and a core
device is what its fleet status reports say it is (`fleet_status`). Nothing here talks to a device directly.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from semantic_version import NpmSpec, Version

from localcloud.jobs import Clock, JobStore, Members, Notify
from localcloud.restjson import ServiceError
from localcloud.rollout import ConfigError, Rules
from recipeformat import digest
from recipeformat.document import RecipeError, load_yaml, normalize
from recipeformat.platform import best_manifest, describe
from recipeformat.validation import problems, s3_artifacts

PAGE = 50
PROCESSING_SECONDS = 0.2


def _not_found(kind: str, resource: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException", f"{kind} {resource} was not found", resourceId=resource, resourceType=kind
    )


def _invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


@dataclass
class ComponentVersion:
    name: str
    version: str
    arn: str
    recipe: dict[str, Any]  # as uploaded
    document: dict[str, Any]  # normalized (recipeformat): what the service reads
    created: float

    @property
    def state(self) -> str:
        """A new version is REQUESTED, then DEPLOYABLE once the service has processed it (here: shortly)."""
        return "DEPLOYABLE" if time.time() - self.created >= PROCESSING_SECONDS else "REQUESTED"

    def status(self) -> dict[str, Any]:
        return {"componentState": self.state, "message": "NONE", "errors": {}}


@dataclass
class Deployment:
    deployment_id: str
    target_arn: str
    name: str
    components: dict[str, Any]
    policies: dict[str, Any]
    job: dict[str, Any]
    created: float
    revision: int
    status: str = "ACTIVE"
    latest: bool = True


@dataclass
class CoreDevice:
    thing: str
    platform: str = "linux"
    architecture: str = "amd64"
    core_version: str = ""
    status: str = "HEALTHY"
    updated: float = field(default_factory=time.time)
    installed: dict[str, dict[str, Any]] = field(default_factory=dict)  # by component name


def _artifacts(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Each artifact mapping of a recipe as written: its keys in any case, as the service reads them."""

    def under(node: Any, key: str) -> list[Any]:
        found = next((v for k, v in node.items() if str(k).lower() == key), None) if isinstance(node, dict) else None
        return found if isinstance(found, list) else []

    return [a for m in under(recipe, "manifests") for a in under(m, "artifacts") if isinstance(a, dict)]


def _page(items: list[dict[str, Any]], key: str, params: dict[str, Any]) -> dict[str, Any]:
    start = int(params.get("nextToken") or 0)
    size = int(params.get("maxResults") or PAGE)
    output: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        output["nextToken"] = str(start + size)
    return output


class ControlPlane:
    def __init__(
        self,
        region: str = "eu-west-1",
        account: str = "123456789012",
        members: Members = lambda target: (),
        artifact_digest: Callable[[str], str | None] = lambda uri: None,
        clock: Clock = time.time,
        notify: Notify = lambda thing: None,
    ) -> None:
        """`members(target)`: the things a target ARN holds (a thing group's members, or the thing), from IoT;
        `artifact_digest(uri)`: an `s3://` artifact's digest (recipeformat.digest), None when it cannot be read,
        from S3; `clock`: the jobs' time (a
        simulation may run it faster); `notify(thing)`: a thing has a job execution waiting."""
        self.region, self.account, self.members = region, account, members
        self.artifact_digest = artifact_digest
        self.jobs = JobStore(region, account, members, clock, notify)
        self.components: dict[str, dict[str, ComponentVersion]] = {}
        self.deployments: dict[str, Deployment] = {}
        self.devices: dict[str, CoreDevice] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}  # by resource ARN
        self.lock = threading.RLock()

    def component_arn(self, name: str) -> str:
        return f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"

    def _version(self, version_arn: str) -> ComponentVersion:
        base, _, version = version_arn.rpartition(":versions:")
        name = base.rsplit(":components:", 1)[-1]
        found = self.components.get(name, {}).get(version)
        if found is None:
            raise _not_found("COMPONENT_VERSION", version_arn)
        return found

    # Component versions ------------------------------------------------------------------------------------

    def create_component_version(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateComponentVersion (API reference): the recipe is validated as the service does, `s3://` artifacts
        must be reachable, and a version that exists is a ConflictException."""
        token = params.get("clientToken")
        if token and token in self.tokens:
            return self.tokens[token]
        raw = params.get("inlineRecipe")
        if raw is None:
            raise _invalid("inlineRecipe is required (the local cloud does not import Lambda functions)")
        try:
            recipe = load_yaml(raw)
            document = normalize(recipe, "the recipe", lambda message: None)
        except (yaml.YAMLError, RecipeError) as exc:
            raise _invalid(f"the recipe is not valid: {exc}") from None
        found = problems(document)
        if found:
            raise _invalid("the recipe is not valid: " + "; ".join(found))
        digests = {uri: self.artifact_digest(uri) for uri in s3_artifacts(document)}
        unreachable = [uri for uri, found in digests.items() if found is None]
        if unreachable:
            raise _invalid(f"Specified artifact resource cannot be accessed: {', '.join(unreachable)}")
        # The service computes each artifact's digest now and serves the recipe with it: a device then refuses an
        # object replaced after this moment (ARTIFACT_CHECKSUM_MISMATCH).
        for artifact in (*_artifacts(recipe), *_artifacts(document)):
            uri = next((str(v) for k, v in artifact.items() if k.lower() == "uri"), "")
            if uri in digests:
                for key in [k for k in artifact if k.lower() in ("digest", "algorithm")]:
                    del artifact[key]
                artifact.update({"Digest": digests[uri], "Algorithm": digest.ALGORITHM})
        name, version = str(document["ComponentName"]), str(document["ComponentVersion"])
        arn = f"{self.component_arn(name)}:versions:{version}"
        if version in self.components.get(name, {}):
            raise ServiceError(
                "ConflictException",
                f"component version {arn} already exists",
                resourceId=arn,
                resourceType="COMPONENT_VERSION",
            )
        created = ComponentVersion(name, version, arn, recipe, document, time.time())
        self.components.setdefault(name, {})[version] = created
        output = {
            "arn": arn,
            "componentName": name,
            "componentVersion": version,
            "creationTimestamp": created.created,
            "status": {"componentState": "REQUESTED", "message": "NONE", "errors": {}},
        }
        if token:
            self.tokens[token] = output
        return output

    def list_component_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListComponentVersions (API reference): greater versions first; a name never registered has none."""
        name = params["arn"].rsplit(":components:", 1)[-1]
        versions = self.components.get(name) or {}
        items = [
            {"componentName": v.name, "componentVersion": v.version, "arn": v.arn}
            for v in sorted(versions.values(), key=lambda v: Version(v.version), reverse=True)
        ]
        return _page(items, "componentVersions", params)

    def get_component(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._version(params["arn"])
        fmt = params.get("recipeOutputFormat", "JSON")
        text = json.dumps(found.recipe) if fmt == "JSON" else yaml.safe_dump(found.recipe, sort_keys=False)
        return {"recipeOutputFormat": fmt, "recipe": text.encode()}

    def describe_component(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._version(params["arn"])
        platforms = [
            {"attributes": {str(k): str(v) for k, v in (m.get("Platform") or {}).items()}}
            for m in found.document["Manifests"]
        ]
        return {
            "arn": found.arn,
            "componentName": found.name,
            "componentVersion": found.version,
            "creationTimestamp": found.created,
            "publisher": str(found.document.get("ComponentPublisher", "")),
            "description": str(found.document.get("ComponentDescription", "")),
            "status": found.status(),
            "platforms": platforms,
        }

    def delete_component(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self._version(params["arn"])
        del self.components[found.name][found.version]
        if not self.components[found.name]:
            del self.components[found.name]
        return {}

    def list_components(self, params: dict[str, Any]) -> dict[str, Any]:
        items = []
        for name, versions in sorted(self.components.items()):
            newest = max(versions.values(), key=lambda v: Version(v.version))
            items.append(
                {
                    "arn": self.component_arn(name),
                    "componentName": name,
                    "latestVersion": {
                        "arn": newest.arn,
                        "componentVersion": newest.version,
                        "creationTimestamp": newest.created,
                    },
                }
            )
        return _page(items, "components", params)

    # Deployments: each one an IoT job on its target --------------------------------------------------------

    def create_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("clientToken")
        if token and token in self.tokens:
            return self.tokens[token]
        target = params["targetArn"]
        components = params.get("components") or {}
        for name, spec in components.items():
            if (spec or {}).get("componentVersion") not in self.components.get(name, {}):
                raise _invalid(f"component {name} {(spec or {}).get('componentVersion')} does not exist")
        job_config = params.get("iotJobConfiguration") or {}
        try:
            rules = Rules.of(job_config, self.jobs.clock())
        except ConfigError as exc:
            raise _invalid(f"iotJobConfiguration is not valid: {exc}") from None
        previous = [d for d in self.deployments.values() if d.target_arn == target]
        for replaced in previous:
            # A new deployment replaces the target's previous one, whose job is canceled.
            if replaced.latest and replaced.status == "ACTIVE":
                replaced.status = "INACTIVE"
                self.jobs.cancel(replaced.deployment_id, "replaced by a newer deployment")
            replaced.latest = False
        deployment = Deployment(
            str(uuid.uuid4()),
            target,
            params.get("deploymentName", ""),
            components,
            params.get("deploymentPolicies") or {},
            job_config,
            time.time(),
            len(previous) + 1,
        )
        self.deployments[deployment.deployment_id] = deployment
        if params.get("tags"):
            self.tags[self._deployment_arn(deployment.deployment_id)] = dict(params["tags"])
        job = self.jobs.create_job(
            deployment.deployment_id, [target], self._job_document(deployment), job_config, rules
        )
        output = {"deploymentId": deployment.deployment_id, "iotJobId": job.job_id, "iotJobArn": job.arn}
        if token:
            self.tokens[token] = output
        return output

    def _job_document(self, d: Deployment) -> dict[str, Any]:
        """What a core receives in the deployment's job: the nucleus's deployment configuration model."""
        target_kind, _, target_name = d.target_arn.rpartition(":")[2].partition("/")
        policies = d.policies
        return {
            "deploymentId": d.deployment_id,
            "deploymentName": d.name,
            "configurationArn": f"arn:aws:greengrass:{self.region}:{self.account}:configuration:"
            f"{target_kind}/{target_name}:{d.revision}",
            "creationTimestamp": int(d.created * 1000),
            "components": {
                name: {
                    "version": spec["componentVersion"],
                    **{k: spec[k] for k in ("configurationUpdate", "runWith") if spec.get(k)},
                }
                for name, spec in d.components.items()
            },
            "failureHandlingPolicy": policies.get("failureHandlingPolicy", "ROLLBACK"),
            "componentUpdatePolicy": policies.get("componentUpdatePolicy")
            or {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": policies.get("configurationValidationPolicy") or {"timeoutInSeconds": 60},
        }

    def _deployment_arn(self, deployment_id: str) -> str:
        return f"arn:aws:greengrass:{self.region}:{self.account}:deployments:{deployment_id}"

    def _tagged(self, arn: str) -> dict[str, str]:
        """The resource an ARN names must exist: a deployment or a component (TagResource's NotFound)."""
        kind, _, name = arn.partition(f"arn:aws:greengrass:{self.region}:{self.account}:")[2].partition(":")
        known = (kind == "deployments" and name in self.deployments) or (
            kind == "components" and name.split(":versions:")[0] in self.components
        )
        if not known:
            raise _not_found("RESOURCE", arn)
        return self.tags.setdefault(arn, {})

    def tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        """TagResource (API reference): tags added to, or replacing the values in, the resource's."""
        self._tagged(params["resourceArn"]).update(params.get("tags") or {})
        return {}

    def untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        tags = self._tagged(params["resourceArn"])
        for key in params.get("tagKeys") or []:
            tags.pop(key, None)
        return {}

    def list_tags_for_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tags": dict(self._tagged(params["resourceArn"]))}

    def _deployment(self, deployment_id: str) -> Deployment:
        if deployment_id not in self.deployments:
            raise _not_found("DEPLOYMENT", deployment_id)
        return self.deployments[deployment_id]

    def _summary(self, d: Deployment) -> dict[str, Any]:
        job = self.jobs.jobs[d.deployment_id]
        # A job stopped by its abort criteria takes its deployment with it; a replaced one is INACTIVE already.
        status = "CANCELED" if d.status == "ACTIVE" and job.status == "CANCELED" else d.status
        return {
            "targetArn": d.target_arn,
            "revisionId": str(d.revision),
            "deploymentId": d.deployment_id,
            "deploymentName": d.name,
            "creationTimestamp": d.created,
            "deploymentStatus": status,
            "isLatestForTarget": d.latest,
        }

    def list_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        chosen = [
            d
            for d in self.deployments.values()
            if (not params.get("targetArn") or d.target_arn == params["targetArn"])
            and (params.get("historyFilter") != "LATEST_ONLY" or d.latest)
        ]
        items = [self._summary(d) for d in sorted(chosen, key=lambda d: d.created, reverse=True)]
        return _page(items, "deployments", params)

    def get_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        d = self._deployment(params["deploymentId"])
        return {
            **self._summary(d),
            "iotJobId": d.deployment_id,
            "iotJobArn": self.jobs.jobs[d.deployment_id].arn,
            "tags": dict(self.tags.get(self._deployment_arn(d.deployment_id), {})),
            "components": d.components,
            "deploymentPolicies": d.policies,
            "iotJobConfiguration": d.job,
        }

    def cancel_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        deployment = self._deployment(params["deploymentId"])
        deployment.status = "CANCELED"
        self.jobs.cancel(deployment.deployment_id, "the deployment was canceled")
        return {"message": "canceled"}

    # The data plane a core calls: which component versions to install ----------------------------------

    def resolve_component_candidates(self, params: dict[str, Any]) -> dict[str, Any]:
        """For each candidate, the greatest version that meets every requirement and has a manifest for the
        core's platform; a candidate without one fails the call, as the service does."""
        attributes = dict((params.get("platform") or {}).get("attributes") or {})
        resolved = []
        for candidate in params.get("componentCandidates") or []:
            name = candidate["componentName"]
            try:
                specs = [NpmSpec(r) for r in (candidate.get("versionRequirements") or {}).values()]
            except ValueError as exc:
                raise _invalid(f"the version requirements of {name} do not parse: {exc}") from None
            fitting = [
                v
                for v in self.components.get(name, {}).values()
                if all(Version(v.version) in spec for spec in specs)
                and best_manifest(v.document["Manifests"], attributes) is not None
            ]
            if not fitting:
                raise ServiceError(
                    "ResourceNotFoundException",
                    f"no version of {name} meets {candidate.get('versionRequirements') or {}} with a manifest for "
                    f"{describe(attributes)}",
                    resourceId=name,
                    resourceType="COMPONENT",
                )
            best = max(fitting, key=lambda v: Version(v.version))
            resolved.append(
                {
                    "arn": best.arn,
                    "componentName": best.name,
                    "componentVersion": best.version,
                    "recipe": json.dumps(best.recipe).encode(),
                }
            )
        return {"resolvedComponentVersions": resolved}

    # Core devices: what their fleet status reports say, and their jobs ---------------------------------

    def fleet_status(self, thing: str, report: dict[str, Any]) -> None:
        """A core's fleet status report (`$aws/things/<thing>/greengrassv2/health/json`): the first one makes
        the thing a core device; a COMPLETE report lists every component, a PARTIAL one the changed ones."""
        device = self.devices.setdefault(thing, CoreDevice(thing))
        device.platform = str(report.get("platform") or device.platform)
        device.architecture = str(report.get("architecture") or device.architecture)
        device.core_version = str(report.get("ggcVersion") or device.core_version)
        device.status = str(report.get("overallDeviceStatus") or device.status)
        reported = {
            c["componentName"]: {
                "componentName": c["componentName"],
                "componentVersion": c.get("version"),
                "lifecycleState": c.get("status"),
                "isRoot": bool(c.get("isRoot")),
                "lastStatusChangeTimestamp": report.get("timestamp", 0) / 1000,
            }
            for c in report.get("components") or []
            if isinstance(c, dict) and c.get("componentName")
        }
        if report.get("messageType") == "PARTIAL":
            device.installed = {**device.installed, **reported}
        else:
            device.installed = reported
        device.updated = time.time()

    def _device(self, thing: str) -> CoreDevice:
        if thing not in self.devices:
            raise _not_found("CORE_DEVICE", thing)
        return self.devices[thing]

    def _core(self, device: CoreDevice) -> dict[str, Any]:
        return {
            "coreDeviceThingName": device.thing,
            "status": device.status,
            "lastStatusUpdateTimestamp": device.updated,
            "platform": device.platform,
            "architecture": device.architecture,
            "runtime": "aws_nucleus_classic",
        }

    def list_core_devices(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("thingGroupArn")
        in_group = set(self.members(group)) if group else set()
        items = [
            self._core(d)
            for _, d in sorted(self.devices.items())
            if (not group or d.thing in in_group) and (not params.get("status") or d.status == params["status"])
        ]
        return _page(items, "coreDevices", params)

    def get_core_device(self, params: dict[str, Any]) -> dict[str, Any]:
        device = self._device(params["coreDeviceThingName"])
        return {**self._core(device), "coreVersion": device.core_version, "tags": {}}

    def list_effective_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        device = self._device(params["coreDeviceThingName"])
        items = []
        for job, execution in reversed(self.jobs.executions_of(device.thing)):
            d = self.deployments.get(job.job_id)
            if d is None:
                continue  # a job that is not a deployment
            entry = {
                "deploymentId": d.deployment_id,
                "deploymentName": d.name,
                "iotJobId": job.job_id,
                "iotJobArn": job.arn,
                "targetArn": d.target_arn,
                "coreDeviceExecutionStatus": execution.status,
                "creationTimestamp": d.created,
                "modifiedTimestamp": execution.updated_at,
            }
            reason = _reason(execution.details)
            if reason:
                entry["reason"] = reason
            if "deployment-error-stack" in execution.details:
                entry["statusDetails"] = {
                    "errorStack": _codes(execution.details["deployment-error-stack"]),
                    "errorTypes": _codes(execution.details.get("deployment-error-types", "[]")),
                }
            items.append(entry)
        return _page(items, "effectiveDeployments", params)

    def list_installed_components(self, params: dict[str, Any]) -> dict[str, Any]:
        installed = list(self._device(params["coreDeviceThingName"]).installed.values())
        return _page(installed, "installedComponents", params)


def _codes(text: str) -> list[str]:
    """An error stack or type list as the device reported it in its execution's status details (a JSON list)."""
    try:
        codes = json.loads(text)
    except ValueError:
        return []
    return [str(code) for code in codes] if isinstance(codes, list) else []


def _reason(details: dict[str, str]) -> str:
    """The execution's status details as one line: the nucleus's detailed status, then the failure's cause."""
    status, cause = details.get("detailed-deployment-status", ""), details.get("deployment-failure-cause", "")
    return ": ".join(part for part in (status, cause) if part) if cause or status.startswith("FAILED") else ""
