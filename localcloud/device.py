"""A local core as a core device of the local cloud: what the nucleus's deployment service does on a device.

It polls the control plane for the newest deployment of its thing groups, fetches the recipes, downloads
`s3://` artifacts (from the local S3), logs in to the registry with an ECR token before `docker:` images are
pulled (as the Docker application manager does), applies the deployment to the core, and reports back: SUCCEEDED
when every component runs, or FAILED after rolling back to the previous components.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from docker.errors import DockerException

from localcloud.greengrassv2 import ControlPlane
from localgg.core import Core
from localgg.deployment import DeploymentError, DeploymentRequest
from localgg.lifecycle import State
from localgg.recipe import RecipeError, parse

log = logging.getLogger("localcloud.device")
SETTLED = (State.RUNNING, State.FINISHED, State.BROKEN)


class DeviceAgent:
    def __init__(
        self,
        core: Core,
        plane: ControlPlane,
        groups: Callable[[], list[str]],
        s3: Any,
        ecr: Any,
        registry_login: Callable[[str, str, str], None],
        workdir: Path,
        settle_timeout: float = 60.0,
        stable_for: float = 3.0,
    ) -> None:
        self.core, self.plane, self.groups = core, plane, groups
        self.s3, self.ecr, self.registry_login = s3, ecr, registry_login
        self.recipe_dir, self.artifact_dir = workdir / "recipes", workdir / "artifacts"
        self.settle_timeout = settle_timeout
        self.stable_for = stable_for

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.poll_once()
                self.plane.report_components(self.core.thing_name, self.installed())
            except (ClientError, BotoCoreError) as exc:  # the cloud did not answer: a device keeps polling
                log.warning("cannot reach the cloud: %s", exc)
            await asyncio.sleep(interval)

    async def poll_once(self) -> str | None:
        # Group membership can change under a device (a thing group created or deleted by Terraform): asked anew.
        groups = await asyncio.get_running_loop().run_in_executor(None, self.groups)
        self.plane.register_core_device(self.core.thing_name, groups)
        deployment = self.plane.next_deployment(self.core.thing_name)
        if deployment is None:
            return None
        deployment_id = deployment["deploymentId"]
        previous = {name: recipe.version for name, recipe in self.core.recipes.items()}
        self.plane.report(self.core.thing_name, deployment_id, "IN_PROGRESS")
        try:
            wanted = {name: spec["componentVersion"] for name, spec in deployment["components"].items()}
            await asyncio.get_running_loop().run_in_executor(None, self._fetch, wanted)
            await self._apply(wanted)
            broken = await self._settle(wanted)
        except (DeploymentError, RecipeError, OSError, ClientError, BotoCoreError, DockerException) as exc:
            broken = [f"the deployment could not be applied: {exc}"]
        if not broken:
            self.plane.report(self.core.thing_name, deployment_id, "SUCCEEDED", installed=self.installed())
            return "SUCCEEDED"
        self.plane.report(
            self.core.thing_name,
            deployment_id,
            "FAILED",
            f"{await self._handle_failure(deployment, previous, broken)}: " + "; ".join(broken),
            installed=self.installed(),
        )
        return "FAILED"

    async def _handle_failure(self, deployment: dict[str, Any], previous: dict[str, str], broken: list[str]) -> str:
        """The deployment's failure handling policy, applied; returns the nucleus's detailed status for it."""
        policies = deployment.get("deploymentPolicies") or {}
        if policies.get("failureHandlingPolicy", "ROLLBACK") == "DO_NOTHING":
            log.error("deployment %s failed: %s; left as it is (DO_NOTHING)", deployment["deploymentId"], broken)
            return "FAILED_ROLLBACK_NOT_REQUESTED"
        log.error("deployment %s failed: %s; rolling back", deployment["deploymentId"], broken)
        try:
            await self._apply(previous)
            still_broken = await self._settle(previous)
        except (DeploymentError, RecipeError, OSError) as exc:
            still_broken = [str(exc)]
        if still_broken:
            log.error("rollback of %s failed: %s", deployment["deploymentId"], still_broken)
            return "FAILED_UNABLE_TO_ROLLBACK"
        return "FAILED_ROLLBACK_COMPLETE"

    def _fetch(self, wanted: dict[str, str]) -> None:
        """Recipes into the recipe folder, artifacts into <artifacts>/<name>/<version>/, registry login."""
        self.recipe_dir.mkdir(parents=True, exist_ok=True)
        for name, version in wanted.items():
            recipe = self.plane.components[name][version].recipe
            path = self.recipe_dir / f"{name}-{version}.json"
            path.write_text(json.dumps(recipe))
            for artifact in parse(path).artifacts:
                if artifact.uri.startswith("s3://"):
                    bucket, _, key = artifact.uri.removeprefix("s3://").partition("/")
                    target = self.artifact_dir / name / version / artifact.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.s3.download_file(bucket, key, str(target))
                elif artifact.docker_image is not None:
                    token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
                    username, _, password = base64.b64decode(token).decode().partition(":")
                    self.registry_login(artifact.docker_image.split("/", 1)[0], username, password)

    async def _apply(self, wanted: dict[str, str]) -> None:
        remove = tuple(name for name in self.core.recipes if name not in wanted)
        await self.core.deploy(DeploymentRequest(self.recipe_dir, self.artifact_dir, wanted, remove))

    async def _settle(self, wanted: dict[str, str]) -> list[str]:
        """Every component running (or finished) and still without new errors after `stable_for` seconds,
        as the nucleus waits for a stable state; the ones that are not, described."""
        errors_before = {name: self.core.components[name].errors for name in wanted}
        broken = []
        for name in wanted:
            try:
                await self.core.components[name].wait_for(*SETTLED, timeout=self.settle_timeout)
            except TimeoutError:
                broken.append(f"{name} did not start within {self.settle_timeout:.0f}s")
        await asyncio.sleep(self.stable_for)
        for name in wanted:
            component = self.core.components[name]
            if component.state is State.BROKEN or component.errors > errors_before[name]:
                broken.append(
                    f"{name} {self.core.recipes[name].version} is {component.state.value} after "
                    f"{component.errors} error(s); see logs/{name}.log"
                )
        return broken

    def installed(self) -> list[dict[str, Any]]:
        return [
            {
                "componentName": name,
                "componentVersion": self.core.recipes[name].version,
                "lifecycleState": self.core.components[name].state.value
                if name in self.core.components
                else "FINISHED",
                "isRoot": True,
            }
            for name in self.core.order
        ]
