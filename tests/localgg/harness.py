"""A Core on its own event-loop thread, recipes written on the fly, and real SDK clients for it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from awsiot.greengrasscoreipc import connect
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from localgg.core import Core
from localgg.deployment import DeploymentRequest
from localgg.runwith import RunWith
from localgg.updates import UpdatePolicy

T = TypeVar("T")
PUBLISH, SUBSCRIBE = "aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic"


def pubsub(*resources: str, operations: tuple[str, ...] = (PUBLISH, SUBSCRIBE)) -> dict[str, Any]:
    return {"aws.greengrass.ipc.pubsub": {"policy:1": {"operations": list(operations), "resources": list(resources)}}}


def write_recipe(
    folder: Path,
    name: str,
    version: str = "1.0.0",
    configuration: dict[str, Any] | None = None,
    lifecycle: dict[str, Any] | None = None,
    dependencies: dict[str, Any] | None = None,
    artifacts: list[dict[str, Any]] | None = None,
    platform: dict[str, str] | None = None,
) -> Path:
    recipe: dict[str, Any] = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentConfiguration": {"DefaultConfiguration": configuration or {}},
        "Manifests": [
            {"Platform": platform or {"os": "linux"}, "Lifecycle": lifecycle or {}, "Artifacts": artifacts or []}
        ],
    }
    if dependencies:
        recipe["ComponentDependencies"] = dependencies
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}.json"
    path.write_text(json.dumps(recipe))
    return path


def run_core(root: Path, recipes: Path, *flags: str) -> subprocess.Popen[str]:
    """`python -m localgg run` in the background, as a user starts it; stderr is kept for the test's message."""
    return subprocess.Popen(
        [sys.executable, "-m", "localgg", "run", "--root", str(root), "--recipe-dir", str(recipes), *flags],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class _ErrorRecorder(logging.Handler):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(self.format(record))


# Every core this process made and whose errors are not all judged yet: tests/conftest.py judges, after each test,
# what each one recorded during it (a module's core included), against the errors the test declared.
UNJUDGED: list[CoreThread] = []


class UnexpectedCoreErrors(AssertionError):
    """The core logged an ERROR or swallowed an exception that no `core_error` marker declared."""


class CoreThread:
    def __init__(
        self,
        docker_check: Any = lambda image: None,
        interpolate_configuration: bool = False,
        run_with: RunWith | None = None,
    ) -> None:
        """`run_with`: the components' default user (None: this process's, as a nucleus installed without one)."""
        # Unix socket paths are short: keep the root out of pytest's long tmp paths. Reachable by others, as a
        # device's /greengrass is (the installer's manual steps: `chmod 755 /greengrass`), for a component user.
        self.root = Path(tempfile.mkdtemp(prefix="gg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.run_with = run_with
        self.recipes = self.root / "recipes"
        self.loop = asyncio.new_event_loop()
        # Asyncio logs and swallows exceptions raised in protocol callbacks: record them so tests can fail on them.
        self.errors: list[str] = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(str(context)))
        self._judged = 0
        self.closed = False
        UNJUDGED.append(self)
        self._log_handler = _ErrorRecorder(self.errors)
        logging.getLogger("localgg").addHandler(self._log_handler)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.core = self.call(self._make(docker_check, interpolate_configuration))
        self.call(self.core.start())
        self.clients: list[GreengrassCoreIPCClientV2] = []

    async def _make(self, docker_check: Any, interpolate_configuration: bool) -> Core:
        return Core(
            self.root / "core",
            thing_name="test-thing",
            region="eu-west-1",
            docker_check=docker_check,
            interpolate_configuration=interpolate_configuration,
            run_with=self.run_with,
        )

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def deploy(
        self,
        *names: str,
        version: str = "1.0.0",
        artifact_dir: Path | None = None,
        update_config: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        policy: UpdatePolicy | None = None,
        deployment_id: str = "",
    ) -> None:
        request = DeploymentRequest(
            self.recipes, artifact_dir, {n: version for n in names}, remove, update_config or {}
        )
        request = dataclasses.replace(
            request, policy=policy or request.policy, deployment_id=deployment_id or request.deployment_id
        )
        self.call(self.core.deploy(request))

    def component(self, name: str, **recipe: Any) -> str:
        """A component with no lifecycle: an identity with configuration and policies, for SDK clients."""
        write_recipe(self.recipes, name, **recipe)
        self.deploy(name)
        return self.core.tokens.issue(name)

    def client(self, name: str) -> GreengrassCoreIPCClientV2:
        ipc = GreengrassCoreIPCClientV2(
            client=connect(ipc_socket=str(self.core.socket), authtoken=self.core.tokens.issue(name))
        )
        self.clients.append(ipc)
        return ipc

    def unjudged(self) -> list[str]:
        """The errors recorded since the last call: each is judged once."""
        new, self._judged = self.errors[self._judged :], len(self.errors)
        return new

    def close(self) -> None:
        """Stops the core; an error it records while stopping is never expected (a module's core stops after the
        per-test judgement), so it fails the fixture that closes it."""
        before = len(self.errors)
        for ipc in self.clients:
            with contextlib.suppress(Exception):  # already closed by the test
                ipc.close()
        self.call(self.core.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        logging.getLogger("localgg").removeHandler(self._log_handler)
        shutil.rmtree(self.root, ignore_errors=True)
        self.closed = True
        stopping = self.errors[before:]
        if stopping:
            self._judged = len(self.errors)
            raise UnexpectedCoreErrors("the core recorded errors while stopping:\n" + "\n".join(stopping))
