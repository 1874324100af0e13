"""What a deployment asks of the running components before it changes them, as the nucleus does.

- Configuration validation (DynamicComponentConfigurationValidator, ConfigStoreIPCEventStreamAgent): a component
  that keeps its version but gets a new configuration is sent the proposed configuration if it subscribed with
  SubscribeToValidateConfigurationUpdates. Every such component must answer ACCEPTED with
  SendConfigurationValidityReport within the deployment's configuration validation timeout; a REJECTED report or
  no report fails the deployment before anything changes. One validator per component: a second subscription
  of the same component is accepted and never asked.
- Component update notices (UpdateSystemPolicyService, LifecycleIPCEventStreamAgent): with the update policy
  NOTIFY_COMPONENTS, every component subscribed with SubscribeToComponentUpdates gets a PreComponentUpdateEvent.
  The core then waits until each has answered with DeferComponentUpdate or the policy's timeout has passed. If
  any answer asked for `recheckAfterMs`, it waits the longest such delay and asks again. After the update, every
  subscriber gets a PostComponentUpdateEvent. SKIP_NOTIFY_COMPONENTS sends neither.

The IPC operations (ipc.py) only record subscriptions and resolve the futures kept here; the deployment (core.py)
awaits them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("localgg.updates")
NS = "aws.greengrass#"


class Listener(Protocol):
    component: str

    def send(self, stream_id: int, model_type: str, payload: bytes, terminate: bool) -> None: ...


@dataclass(frozen=True)
class UpdatePolicy:
    """A deployment's componentUpdatePolicy and configurationValidationPolicy. The defaults are a local
    deployment's (the nucleus gives it NOTIFY_COMPONENTS with 60 s); 30 s is the service's default validation
    timeout (CreateDeployment, DeploymentConfigurationValidationPolicy)."""

    notify: bool = True
    timeout: float = 60.0
    validation_timeout: float = 30.0

    @classmethod
    def of(cls, policies: dict[str, Any]) -> UpdatePolicy:
        """From a deployment document's `componentUpdatePolicy` and `configurationValidationPolicy`."""
        update = policies.get("componentUpdatePolicy") or {}
        validation = policies.get("configurationValidationPolicy") or {}
        return cls(
            notify=update.get("action", "NOTIFY_COMPONENTS") != "SKIP_NOTIFY_COMPONENTS",
            timeout=float(update.get("timeoutInSeconds", cls.timeout)),
            validation_timeout=float(validation.get("timeoutInSeconds", cls.validation_timeout)),
        )


class ConfigurationRejected(Exception):
    """A component rejected its proposed configuration, or did not answer in time; nothing was changed."""


class NoticeError(Exception):
    """An IPC request that does not fit the deployment in progress; `shape` is the IPC error to answer."""

    def __init__(self, shape: str, message: str) -> None:
        super().__init__(message)
        self.shape = shape


@dataclass(eq=False)
class _Stream:
    listener: Listener
    stream_id: int


class UpdateNotices:
    def __init__(self) -> None:
        self._update_streams: list[_Stream] = []
        self._deferrals: dict[tuple[str, str], asyncio.Future[int]] = {}
        self._validators: dict[str, _Stream] = {}
        self._reports: dict[str, asyncio.Future[dict[str, Any]]] = {}

    # What the IPC operations record -------------------------------------------------------------------------

    def subscribe_to_updates(self, listener: Listener, stream_id: int) -> Callable[[], None]:
        stream = _Stream(listener, stream_id)
        self._update_streams.append(stream)
        return lambda: self._update_streams.remove(stream) if stream in self._update_streams else None

    def defer(self, component: str, deployment_id: Any, recheck_after_ms: Any) -> None:
        if not any(s.listener.component == component for s in self._update_streams):
            raise NoticeError("InvalidArgumentsError", "Component is not subscribed to component update events")
        if deployment_id is None:
            raise NoticeError("InvalidArgumentsError", "Cannot defer the update, the deployment ID provided was null")
        waiting = self._deferrals.pop((component, str(deployment_id)), None)
        if waiting is None:
            raise NoticeError("ServiceError", "Time limit to respond to PreComponentUpdateEvent exceeded")
        if not waiting.done():
            waiting.set_result(max(0, int(recheck_after_ms or 0)))

    def subscribe_to_validation(self, listener: Listener, stream_id: int) -> Callable[[], None]:
        if listener.component in self._validators:
            return lambda: None  # the first subscription stays the component's validator
        stream = self._validators[listener.component] = _Stream(listener, stream_id)

        def cancel() -> None:
            if self._validators.get(listener.component) is stream:
                del self._validators[listener.component]

        return cancel

    def report(self, component: str, report: Any) -> None:
        waiting = self._reports.pop(component, None)
        if waiting is None:
            raise NoticeError("InvalidArgumentsError", "Validation request either timed out or was never made")
        if not waiting.done():
            waiting.set_result(report if isinstance(report, dict) else {})

    # What a deployment awaits -------------------------------------------------------------------------------

    async def validate(self, deployment_id: str, proposals: dict[str, dict[str, Any]], timeout: float) -> None:
        """Each proposed configuration, to its component's validator if it has one; ConfigurationRejected names
        every component that rejected it or did not answer."""
        loop = asyncio.get_running_loop()
        asked: dict[str, asyncio.Future[dict[str, Any]]] = {}
        for component, configuration in proposals.items():
            stream = self._validators.get(component)
            if stream is None:
                continue
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._reports[component] = future
            event = {
                "validateConfigurationUpdateEvent": {"configuration": configuration, "deploymentId": deployment_id}
            }
            stream.listener.send(
                stream.stream_id, NS + "ValidateConfigurationUpdateEvents", json.dumps(event).encode(), False
            )
            asked[component] = future
        if not asked:
            return
        try:
            await asyncio.wait(asked.values(), timeout=timeout)
        finally:
            for component, future in asked.items():
                if self._reports.get(component) is future:
                    del self._reports[component]
        problems = []
        for component, future in asked.items():
            if not future.done():
                problems.append(f"{component} sent no validation report within {timeout:.0f}s")
            elif future.result().get("status") != "ACCEPTED":
                problems.append(f"{component} rejected it: {future.result().get('message') or 'no message'}")
        if problems:
            raise ConfigurationRejected(
                "Components reported that their to-be-deployed configuration is invalid: " + "; ".join(problems)
            )

    async def before_update(self, deployment_id: str, timeout: float) -> None:
        """PreComponentUpdateEvent to every subscriber, again after the longest deferral, until none defers."""
        loop = asyncio.get_running_loop()
        while True:
            waiting: list[asyncio.Future[int]] = []
            self._deferrals.clear()  # answers to an earlier round no longer count
            event = json.dumps({"preUpdateEvent": {"deploymentId": deployment_id, "isGgcRestarting": False}}).encode()
            for stream in list(self._update_streams):
                future: asyncio.Future[int] = loop.create_future()
                self._deferrals[(stream.listener.component, deployment_id)] = future
                stream.listener.send(stream.stream_id, NS + "ComponentUpdatePolicyEvents", event, False)
                waiting.append(future)
            if not waiting:
                return
            await asyncio.wait(waiting, timeout=timeout)
            self._deferrals.clear()
            deferral = max((f.result() for f in waiting if f.done()), default=0)
            if deferral <= 0:
                return
            log.info("deployment %s deferred by a component for %d ms", deployment_id, deferral)
            await asyncio.sleep(deferral / 1000)

    def after_update(self, deployment_id: str) -> None:
        event = json.dumps({"postUpdateEvent": {"deploymentId": deployment_id}}).encode()
        for stream in list(self._update_streams):
            stream.listener.send(stream.stream_id, NS + "ComponentUpdatePolicyEvents", event, False)
