"""The local core: the IPC server, the configuration, and the components of the current deployment."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localgg import environment
from localgg.authorization import Authorizer
from localgg.config import ConfigStore, merged
from localgg.deployment import (
    ConfigurationNotValid,
    DeploymentError,
    DeploymentRequest,
    prepare_artifacts,
    resolve,
)
from localgg.ipc import IotCoreBridge, IpcServices
from localgg.leftovers import Ledger, reap
from localgg.lifecycle import FILE_SIZE_KB, TOTAL_LOGS_SIZE_KB, Component, State
from localgg.permissions import FOLDER, give, own_root
from localgg.recipe import Dependency, Paths, Recipe, Step, interpolate
from localgg.runwith import RunWith
from localgg.server import IpcServer, Tokens
from localgg.updates import ConfigurationRejected
from recipeformat.platform import oci_platform, this_device

log = logging.getLogger("localgg.core")
GGC_VERSION = "2.14.0"
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL
DEPENDENCY_TIMEOUT = 300.0


class CoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class _Proposal:
    """The recipes and configurations a deployment would leave (configurations only of the components it
    changes): what a lifecycle would read of its dependencies after it."""

    recipes: dict[str, Recipe]
    configurations: dict[str, dict[str, Any]]


def check_docker_image(image: str, engine: Any = None) -> None:
    """What the Docker application manager does: the image is there, or it is pulled. A device's engine pulls its
    own CPU's variant of a multi-platform image; the engine here may serve a core of another CPU (an emulated
    device), so the pull names the core's platform. `engine`: a Docker client already logged in to the image's
    registry, as the application manager's `docker login` leaves the engine's CLI (None: the environment's)."""
    import docker
    import docker.errors

    try:
        client = engine or docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DeploymentError(f"docker image {image} cannot be checked: no Docker engine answers ({exc})") from None
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(image, platform=oci_platform(this_device()))
    except docker.errors.APIError as exc:
        raise DeploymentError(
            f"docker image {image} is neither present nor pullable: {exc.explanation or exc}"
        ) from None


class Core:
    def __init__(
        self,
        root: Path,
        thing_name: str = "localgg-core",
        region: str = "us-east-1",
        iot_core: IotCoreBridge | None = None,
        docker_check: Callable[[str], None] = check_docker_image,
        interpolate_configuration: bool = False,
        run_with: RunWith | None = None,
        service_environment: Mapping[str, str] | None = None,
    ) -> None:
        """`run_with`: the components' default user (the installer's `--component-default-user`); None runs them as
        this core's own user, as a nucleus installed without one does. `service_environment`: what the steps start
        from, as a nucleus installed as a system service has it (localgg.environment; by default its PATH, locale
        and HOME, and DOCKER_HOST, the engine of this device)."""
        self.run_with = run_with or RunWith.current()
        # The nucleus's logging.fileSizeKB and totalLogsSizeKB, in bytes: each component log's file and total sizes.
        self.log_limits = (FILE_SIZE_KB << 10, TOTAL_LOGS_SIZE_KB << 10)
        self.service_environment = dict(
            service_environment if service_environment is not None else environment.of_service(("DOCKER_HOST",))
        )
        self.root = root.resolve()
        self.socket = self.root / "ipc.socket"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise CoreError(f"{self.socket} is longer than a Unix socket path may be; use a shorter --root")
        self.thing_name = thing_name
        self.region = region
        self.docker_check = docker_check
        self.interpolate_configuration = interpolate_configuration
        self.config = ConfigStore()
        self.authorizer = Authorizer()
        self.tokens = Tokens()
        self.services = IpcServices(self.config, self.authorizer, self._reported, iot_core)
        self.recipes: dict[str, Recipe] = {}
        self.components: dict[str, Component] = {}
        self.order: list[str] = []
        self.broken: set[str] = set()  # components that went BROKEN: the deployment failed (the nucleus: FAILED)
        self._last_state: dict[str, State] = {}  # what status.json says of a component after it stopped
        # Told of every state a component enters, as it enters it (the nucleus's global state change listeners).
        self.state_listeners: list[Callable[[str, State], None]] = []
        self.server = IpcServer(self.socket, self.services, self.tokens)
        self.ledger = Ledger(self.root)
        self._starting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        own_root(self.root)
        # What an earlier run of this core left running when it was killed, ended before anything starts again.
        await asyncio.to_thread(reap, self.root)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        await self.server.start()

    # Deployments -------------------------------------------------------------------------------------------

    async def deploy(self, request: DeploymentRequest) -> None:
        """Apply a deployment, as the nucleus does: everything is checked and prepared, then components that keep
        their version validate their new configuration, then subscribers hear of the update (and may defer it),
        and only then are running components touched. A component whose version stays runs on with its new
        configuration (each changed key reaches its SubscribeToConfigurationUpdate streams); it restarts only if
        the configuration changes its lifecycle as interpolated."""
        order = resolve(request, self.recipes)
        fresh = [r for r in order if self.recipes.get(r.name) != r]
        reconfigured = [r for r in order if r not in fresh and r.name in request.update_config]
        loop = asyncio.get_running_loop()
        for recipe in fresh:
            paths = Paths(self.root, recipe.name, recipe.version)
            await loop.run_in_executor(None, prepare_artifacts, recipe, paths, request.artifact_dir, self.docker_check)
        configurations = {
            r.name: self._proposed(r, request.update_config.get(r.name, {})) for r in fresh + reconfigured
        }
        running = {r.name for r in reconfigured if r.name in self.components}
        proposals = {n: c for n, c in configurations.items() if n in running and c != self.config.tree(n)}
        try:
            await self.services.updates.validate(request.deployment_id, proposals, request.policy.validation_timeout)
        except ConfigurationRejected as exc:
            raise ConfigurationNotValid(str(exc)) from None
        wanted = {r.name for r in order}
        removed = [name for name in self.order if name not in wanted]
        notify = bool(fresh or reconfigured or removed) and request.policy.notify
        if notify:
            await self.services.updates.before_update(request.deployment_id, request.policy.timeout)
        # A component also restarts when what its lifecycle reads of a dependency changes (a new version's
        # artifact path, a changed configuration value), as the nucleus re-resolves every lifecycle.
        proposed = _Proposal({**self.recipes, **{r.name: r for r in order}}, configurations)
        # And a component the deployment keeps that is BROKEN starts over: a deployment may fix it
        # (DeploymentConfigMerger: servicesChangeManager.reinstallBrokenServices after the merge).
        restarted = [
            r
            for r in order
            if r not in fresh
            and (r in reconfigured or r.name in self.components)
            and (self._lifecycle_changes(r, proposed) or self._is_broken(r.name))
        ]
        configurations = {r.name: self._configuration(r.name, proposed) for r in order}
        for name in reversed(self.order):
            if name in removed or any(r.name == name for r in fresh + restarted):
                await self._stop_component(name, forget=name in removed)
        for recipe in fresh + reconfigured:
            self.config.set_component(recipe.name, configurations[recipe.name])
            self.authorizer.load(recipe.name, configurations[recipe.name].get("accessControl"))
            self.recipes[recipe.name] = recipe
        self.order = [r.name for r in order]
        for recipe in fresh + restarted:
            self.broken.discard(recipe.name)
            self.components[recipe.name] = self._component(recipe, configurations[recipe.name])
            task = asyncio.create_task(self._start_when_ready(self.components[recipe.name]))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
        self._write_status()
        self._write_effective_config()
        if notify:
            self.services.updates.after_update(request.deployment_id)

    def _is_broken(self, name: str) -> bool:
        component = self.components.get(name)
        return component is not None and component.state is State.BROKEN

    def _proposed(self, recipe: Recipe, update: dict[str, Any]) -> dict[str, Any]:
        previous = self.config.tree(recipe.name) if self.config.has(recipe.name) else None
        tree = merged(recipe.default_configuration, update.get("MERGE"), update.get("RESET"), previous)
        return self._interpolated(recipe, tree) if self.interpolate_configuration else tree

    def _interpolated(self, recipe: Recipe, tree: dict[str, Any]) -> dict[str, Any]:
        """interpolateComponentConfiguration: recipe variables in configuration values are expanded
        ({configuration:...} stays as written: a configuration does not refer to itself)."""
        expand = self._expander(recipe, {})

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return {key: walk(item) for key, item in value.items()}
            if isinstance(value, list):
                return [walk(item) for item in value]
            return expand(value) if isinstance(value, str) else value

        expanded: dict[str, Any] = walk(tree)
        return expanded

    def _configuration(self, name: str, proposed: _Proposal | None = None) -> dict[str, Any]:
        """A component's configuration as a deployment proposes it, else as it is."""
        if proposed is not None and name in proposed.configurations:
            return proposed.configurations[name]
        return self.config.tree(name) if self.config.has(name) else {}

    def _lifecycle_changes(self, recipe: Recipe, proposed: _Proposal) -> bool:
        running = self.components.get(recipe.name)
        configuration = self._configuration(recipe.name, proposed)
        return running is None or self._lifecycle(recipe, configuration, proposed) != (running.steps, running.env)

    def _expander(
        self, recipe: Recipe, configuration: dict[str, Any], proposed: _Proposal | None = None
    ) -> Callable[[str], str]:
        """Recipe variables expanded for `recipe` on this core, `{configuration:...}` from `configuration`, its
        dependencies' variables from the recipes and configurations `proposed` (else the current ones)."""
        paths = Paths(self.root, recipe.name, recipe.version)
        recipes = proposed.recipes if proposed else self.recipes
        dependencies = {
            name: Dependency(Paths(self.root, name, recipes[name].version), self._configuration(name, proposed))
            for name in recipe.dependencies
            if name in recipes
        }
        return lambda text: interpolate(text, paths, configuration, self.thing_name, dependencies)

    def _lifecycle(
        self, recipe: Recipe, configuration: dict[str, Any], proposed: _Proposal | None = None
    ) -> tuple[dict[str, Step], dict[str, str]]:
        """The recipe's steps and environment with its variables interpolated."""
        expand = self._expander(recipe, configuration, proposed)
        steps = {
            name: dataclasses.replace(
                step,
                script=expand(step.script),
                env={k: expand(v) for k, v in step.env.items()},
                skip_if=expand(step.skip_if) if step.skip_if else None,
            )
            for name, step in recipe.steps.items()
        }
        env = {
            **self.service_environment,
            **self._environment(recipe.name),
            **{k: expand(v) for k, v in recipe.env.items()},
        }
        return steps, env

    def _component(self, recipe: Recipe, configuration: dict[str, Any]) -> Component:
        steps, env = self._lifecycle(recipe, configuration)
        log_path = self.root / "logs" / f"{recipe.name}.log"
        paths = Paths(self.root, recipe.name, recipe.version)
        paths.work.mkdir(parents=True, exist_ok=True)
        os.chmod(paths.work.parent, FOLDER)  # Permissions.setWorkPathPermission
        # RunWithPathOwnershipHandler.updateOwner: the work folder and the artifacts' files are the component's.
        give(paths.work, self.run_with, including_itself=True)
        give(paths.artifacts, self.run_with, including_itself=False)
        give(paths.decompressed, self.run_with, including_itself=False)
        return Component(
            recipe, steps, env, paths.work, log_path, self._state_changed, self.run_with, self.ledger, self.log_limits
        )

    def _environment(self, name: str) -> dict[str, str]:
        token = self.tokens.issue(name)
        return {
            "SVCUID": token,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": token,
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH": str(self.socket),
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(self.socket),
            "AWS_IOT_THING_NAME": self.thing_name,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "GGC_VERSION": GGC_VERSION,
        }

    async def _start_when_ready(self, component: Component) -> None:
        for dependency in component.recipe.dependencies:
            other = self.components.get(dependency)
            if other is None:
                continue  # built in
            try:
                state = await other.wait_for(State.RUNNING, State.FINISHED, State.BROKEN, timeout=DEPENDENCY_TIMEOUT)
            except TimeoutError:
                state = other.state
            if state not in (State.RUNNING, State.FINISHED):
                log.error("%s not started: its dependency %s is %s", component.name, dependency, state.value)
                return
        component.start()

    async def _stop_component(self, name: str, forget: bool) -> None:
        component = self.components.pop(name, None)
        if component is not None:
            await component.stop()
        if forget:
            self.recipes.pop(name, None)
            self.config.remove_component(name)
            self.authorizer.forget(name)
            self.tokens.revoke(name)

    # State ---------------------------------------------------------------------------------------------------

    def _state_changed(self, name: str, state: State) -> None:
        self._last_state[name] = state
        if state is State.BROKEN and name not in self.broken:
            self.broken.add(name)
            log.error("deployment FAILED: %s is BROKEN; see logs/%s.log", name, name)
        self._write_status()
        for listener in self.state_listeners:
            listener(name, state)

    def _reported(self, name: str, state: str) -> None:
        component = self.components.get(name)
        if component is not None:
            component.report(state)

    def status(self) -> dict[str, Any]:
        states = {self.components[n].state for n in self.order if n in self.components}
        settled = {State.RUNNING, State.FINISHED, State.BROKEN}
        deployment = "FAILED" if self.broken else "SUCCEEDED" if states <= settled else "IN_PROGRESS"
        return {
            "thingName": self.thing_name,
            "socket": str(self.socket),
            "deployment": {"status": deployment, "broken": sorted(self.broken)},
            "components": {
                name: {
                    "version": self.recipes[name].version,
                    "state": (
                        self.components[name].state
                        if name in self.components
                        else self._last_state.get(name, State.FINISHED)
                    ).value,
                }
                for name in self.order
                if name in self.recipes  # while a deployment removes components, the order still names them
            },
        }

    def _write_status(self) -> None:
        path = self.root / "status.json"
        staged = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(staged, "w") as out:
            out.write(json.dumps(self.status(), indent=2))
        path.with_suffix(".tmp").replace(path)

    def _write_effective_config(self) -> None:
        """ROOT/config/effectiveConfig.yaml, as the nucleus writes its configuration after a deployment."""
        services = {
            name: {
                "componentType": "GENERIC",
                "version": self.recipes[name].version,
                "configuration": self.config.tree(name),
            }
            for name in self.order
            if name in self.recipes
        }
        path = self.root / "config" / "effectiveConfig.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(
            yaml.safe_dump({"system": {"thingName": self.thing_name}, "services": services})
        )
        path.with_suffix(".tmp").replace(path)

    async def stop(self) -> None:
        """Every component stopped, dependents first; then the IPC server closes."""
        for name in reversed(self.order):
            await self._stop_component(name, forget=False)
        self.server.close()
        self._write_status()
