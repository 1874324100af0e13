"""A local AWS IoT Greengrass v2 control plane: component versions, deployments, core devices.

The operations the deploy pipeline uses, with the service's shapes and error codes (a duplicate version is a
ConflictException, an unknown ARN a ResourceNotFoundException). Core devices register and report through the
device-side methods at the end, which is where a local core (localgg) plugs in.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

STATES_DONE = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "COMPLETED"}
PAGE = 50


class ServiceError(Exception):
    """Answered as the service's modeled error `shape` with these fields."""

    def __init__(self, shape: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.shape = shape
        self.fields = fields


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
    recipe: dict[str, Any]
    created: float


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
    groups: set[str]
    platform: str = "linux"
    architecture: str = "amd64"
    updated: float = field(default_factory=time.time)
    executions: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # deployment -> status, reason, when
    installed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        broken = any(c.get("lifecycleState") in ("ERRORED", "BROKEN") for c in self.installed)
        return "UNHEALTHY" if broken else "HEALTHY"


def _page(items: list[dict[str, Any]], key: str, params: dict[str, Any]) -> dict[str, Any]:
    start = int(params.get("nextToken") or 0)
    size = int(params.get("maxResults") or PAGE)
    output: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        output["nextToken"] = str(start + size)
    return output


class ControlPlane:
    def __init__(self, region: str = "eu-west-1", account: str = "123456789012") -> None:
        self.region, self.account = region, account
        self.components: dict[str, dict[str, ComponentVersion]] = {}
        self.deployments: dict[str, Deployment] = {}
        self.devices: dict[str, CoreDevice] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
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
        token = params.get("clientToken")
        if token and token in self.tokens:
            return self.tokens[token]
        raw = params.get("inlineRecipe")
        if raw is None:
            raise _invalid("inlineRecipe is required (lambda components are not supported locally)")
        try:
            recipe = yaml.safe_load(raw)  # JSON is YAML
        except yaml.YAMLError as exc:
            raise _invalid(f"the recipe does not parse: {exc}") from None
        if not isinstance(recipe, dict) or not recipe.get("ComponentName") or not recipe.get("ComponentVersion"):
            raise _invalid("the recipe needs ComponentName and ComponentVersion")
        name, version = str(recipe["ComponentName"]), str(recipe["ComponentVersion"])
        arn = f"{self.component_arn(name)}:versions:{version}"
        if version in self.components.get(name, {}):
            raise ServiceError(
                "ConflictException",
                f"component version {arn} already exists",
                resourceId=arn,
                resourceType="COMPONENT_VERSION",
            )
        created = ComponentVersion(name, version, arn, recipe, time.time())
        self.components.setdefault(name, {})[version] = created
        output = {
            "arn": arn,
            "componentName": name,
            "componentVersion": version,
            "creationTimestamp": created.created,
            "status": {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}},
        }
        if token:
            self.tokens[token] = output
        return output

    def list_component_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["arn"].rsplit(":components:", 1)[-1]
        versions = self.components.get(name)
        if not versions:
            raise _not_found("COMPONENT", params["arn"])
        items = [
            {"componentName": v.name, "componentVersion": v.version, "arn": v.arn}
            for v in sorted(versions.values(), key=lambda v: v.created, reverse=True)
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
            for m in found.recipe.get("Manifests") or []
        ]
        return {
            "arn": found.arn,
            "componentName": found.name,
            "componentVersion": found.version,
            "creationTimestamp": found.created,
            "publisher": str(found.recipe.get("ComponentPublisher", "")),
            "description": str(found.recipe.get("ComponentDescription", "")),
            "status": {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}},
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
            newest = max(versions.values(), key=lambda v: v.created)
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

    # Deployments -------------------------------------------------------------------------------------------

    def create_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("clientToken")
        if token and token in self.tokens:
            return self.tokens[token]
        target = params["targetArn"]
        components = params.get("components") or {}
        for name, spec in components.items():
            if (spec or {}).get("componentVersion") not in self.components.get(name, {}):
                raise _invalid(f"component {name} {(spec or {}).get('componentVersion')} does not exist")
        previous = [d for d in self.deployments.values() if d.target_arn == target]
        for deployment in previous:
            deployment.latest = False
        deployment = Deployment(
            str(uuid.uuid4()),
            target,
            params.get("deploymentName", ""),
            components,
            params.get("deploymentPolicies") or {},
            params.get("iotJobConfiguration") or {},
            time.time(),
            len(previous) + 1,
        )
        self.deployments[deployment.deployment_id] = deployment
        output = {
            "deploymentId": deployment.deployment_id,
            "iotJobId": deployment.deployment_id,
            "iotJobArn": f"arn:aws:iot:{self.region}:{self.account}:job/{deployment.deployment_id}",
        }
        if token:
            self.tokens[token] = output
        return output

    def _deployment(self, deployment_id: str) -> Deployment:
        if deployment_id not in self.deployments:
            raise _not_found("DEPLOYMENT", deployment_id)
        return self.deployments[deployment_id]

    @staticmethod
    def _summary(d: Deployment) -> dict[str, Any]:
        return {
            "targetArn": d.target_arn,
            "revisionId": str(d.revision),
            "deploymentId": d.deployment_id,
            "deploymentName": d.name,
            "creationTimestamp": d.created,
            "deploymentStatus": d.status,
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
            "components": d.components,
            "deploymentPolicies": d.policies,
            "iotJobConfiguration": d.job,
        }

    def cancel_deployment(self, params: dict[str, Any]) -> dict[str, Any]:
        self._deployment(params["deploymentId"]).status = "CANCELED"
        return {"message": "canceled"}

    # Core devices ------------------------------------------------------------------------------------------

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
        items = [
            self._core(d)
            for _, d in sorted(self.devices.items())
            if (not group or group in d.groups) and (not params.get("status") or d.status == params["status"])
        ]
        return _page(items, "coreDevices", params)

    def get_core_device(self, params: dict[str, Any]) -> dict[str, Any]:
        device = self._device(params["coreDeviceThingName"])
        return {**self._core(device), "coreVersion": "2.14.0", "tags": {}}

    def list_effective_deployments(self, params: dict[str, Any]) -> dict[str, Any]:
        device = self._device(params["coreDeviceThingName"])
        items = []
        for d in sorted(self.deployments.values(), key=lambda d: d.created, reverse=True):
            if d.target_arn not in device.groups:
                continue
            if d.deployment_id not in device.executions and not d.latest:
                continue  # superseded before this device picked it up
            status, reason, when = device.executions.get(d.deployment_id, ("QUEUED", "", d.created))
            entry = {
                "deploymentId": d.deployment_id,
                "deploymentName": d.name,
                "iotJobId": d.deployment_id,
                "targetArn": d.target_arn,
                "coreDeviceExecutionStatus": status,
                "creationTimestamp": d.created,
                "modifiedTimestamp": when,
            }
            if reason:
                entry["reason"] = reason
            items.append(entry)
        return _page(items, "effectiveDeployments", params)

    def list_installed_components(self, params: dict[str, Any]) -> dict[str, Any]:
        return _page(list(self._device(params["coreDeviceThingName"]).installed), "installedComponents", params)

    # Device side: what a core reports (through `localgg`, not the AWS API) ---------------------------------

    def register_core_device(self, thing: str, groups: list[str], architecture: str = "amd64") -> None:
        with self.lock:
            device = self.devices.setdefault(thing, CoreDevice(thing, set(groups), architecture=architecture))
            device.groups = set(groups)
            device.updated = time.time()

    def next_deployment(self, thing: str) -> dict[str, Any] | None:
        """The newest ACTIVE deployment for one of the device's groups that it has not finished yet."""
        with self.lock:
            device = self._device(thing)
            pending = [
                d
                for d in self.deployments.values()
                if d.target_arn in device.groups
                and d.latest
                and d.status == "ACTIVE"
                and device.executions.get(d.deployment_id, ("",))[0] not in STATES_DONE
            ]
            if not pending:
                return None
            newest = max(pending, key=lambda d: d.created)
            return {
                "deploymentId": newest.deployment_id,
                "components": newest.components,
                "deploymentPolicies": newest.policies,
            }

    def report(
        self,
        thing: str,
        deployment_id: str,
        status: str,
        reason: str = "",
        installed: list[dict[str, Any]] | None = None,
    ) -> None:
        with self.lock:
            device = self._device(thing)
            device.executions[deployment_id] = (status, reason, time.time())
            if installed is not None:
                device.installed = installed
            device.updated = time.time()

    def report_components(self, thing: str, installed: list[dict[str, Any]]) -> None:
        """A component state change outside a deployment (the fleet status service's periodic update)."""
        with self.lock:
            device = self._device(thing)
            if installed != device.installed:
                device.installed = installed
                device.updated = time.time()
