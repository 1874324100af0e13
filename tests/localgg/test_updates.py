"""What a deployment asks of the running components, through the real SDK client (GreengrassCoreIPCClientV2):
component update notices with deferrals (the nucleus's UpdateSystemPolicyService and LifecycleIPCEventStreamAgent),
configuration validation before a configuration lands (DynamicComponentConfigurationValidator and
ConfigStoreIPCEventStreamAgent), and configuration changes that reach a running component without restarting
it (GenericExternalService restarts only when its interpolated lifecycle changes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from awsiot.greengrasscoreipc.model import (
    BinaryMessage,
    ComponentUpdatePolicyEvents,
    ConfigurationUpdateEvents,
    ConfigurationValidityReport,
    ConfigurationValidityStatus,
    InvalidArgumentsError,
    PublishMessage,
    ResourceNotFoundError,
    ServiceError,
    UnauthorizedError,
    ValidateConfigurationUpdateEvents,
)

from localgg.deployment import DeploymentError
from localgg.updates import UpdatePolicy
from tests.localgg.harness import CoreThread, pubsub, write_recipe
from tests.support.eventually import eventually

QUICK = UpdatePolicy(timeout=2.0, validation_timeout=2.0)


@pytest.fixture
def gg() -> Iterator[CoreThread]:
    core = CoreThread()
    yield core
    core.close()


class UpdateListener:
    """A component that subscribes to component updates and answers each pre-update event with the next of
    `deferrals` (milliseconds; None: no answer at all)."""

    def __init__(self, gg: CoreThread, name: str, deferrals: list[int | None]) -> None:
        gg.component(name)
        self.ipc, self.deferrals = gg.client(name), list(deferrals)
        self.events: list[tuple[str, str]] = []
        self.ipc.subscribe_to_component_updates(on_stream_event=self.on_event)

    def on_event(self, event: ComponentUpdatePolicyEvents) -> None:
        if event.pre_update_event is not None:
            deployment = event.pre_update_event.deployment_id
            self.events.append(("pre", deployment))
            answer = self.deferrals.pop(0) if self.deferrals else 0
            if answer is not None:
                self.ipc.defer_component_update(deployment_id=deployment, recheck_after_ms=answer, message="busy")
        elif event.post_update_event is not None:
            self.events.append(("post", event.post_update_event.deployment_id))


def deploy_new_component(gg: CoreThread, **options: Any) -> None:
    write_recipe(gg.recipes, "com.example.New")
    gg.deploy("com.example.New", **options)


def test_subscribers_hear_of_an_update_before_and_after_it(gg: CoreThread) -> None:
    """UpdateSystemPolicyService: a PreComponentUpdateEvent to every subscriber, the update once they answered,
    then a PostComponentUpdateEvent with the same deployment id."""
    listener = UpdateListener(gg, "com.example.Listener", [0])
    deploy_new_component(gg, policy=QUICK, deployment_id="deployment-1")
    assert "com.example.New" in gg.core.components
    assert eventually(lambda: len(listener.events) == 2)
    assert listener.events == [("pre", "deployment-1"), ("post", "deployment-1")]


def test_a_deferral_holds_the_update_and_the_core_asks_again(gg: CoreThread) -> None:
    """DeferComponentUpdate with recheckAfterMs: the core waits that long and sends the PreComponentUpdateEvent
    again; the update goes ahead once no answer defers it."""
    listener = UpdateListener(gg, "com.example.Busy", [300, 300, 0])
    deploy_new_component(gg, policy=QUICK, deployment_id="deployment-2")
    assert [kind for kind, _ in listener.events[:3]] == ["pre", "pre", "pre"]
    assert "com.example.New" in gg.core.components
    assert eventually(lambda: listener.events[-1] == ("post", "deployment-2"))


def test_a_silent_subscriber_delays_the_update_only_until_the_policy_timeout(gg: CoreThread) -> None:
    """No answer within the componentUpdatePolicy timeout: the update goes ahead; a deferral sent afterwards is
    refused with the nucleus's ServiceError."""
    listener = UpdateListener(gg, "com.example.Silent", [None])
    deploy_new_component(gg, policy=UpdatePolicy(timeout=0.5), deployment_id="deployment-3")
    assert "com.example.New" in gg.core.components
    with pytest.raises(ServiceError) as late:
        listener.ipc.defer_component_update(deployment_id="deployment-3", recheck_after_ms=1000)
    assert late.value.message == "Time limit to respond to PreComponentUpdateEvent exceeded"


def test_skip_notify_components_sends_no_notice(gg: CoreThread) -> None:
    listener = UpdateListener(gg, "com.example.Unbothered", [])
    deploy_new_component(gg, policy=UpdatePolicy(notify=False), deployment_id="unnotified")
    assert "com.example.New" in gg.core.components
    # A later deployment that does notify: its events come on the same stream after any the first one sent.
    write_recipe(gg.recipes, "com.example.Later")
    gg.deploy("com.example.Later", policy=QUICK, deployment_id="notified")
    assert eventually(lambda: ("post", "notified") in listener.events)
    assert listener.events == [("pre", "notified"), ("post", "notified")]


def test_deferring_without_a_subscription_is_an_invalid_argument(gg: CoreThread) -> None:
    gg.component("com.example.Stranger")
    with pytest.raises(InvalidArgumentsError) as refused:
        gg.client("com.example.Stranger").defer_component_update(deployment_id="d", recheck_after_ms=10)
    assert refused.value.message == "Component is not subscribed to component update events"


class Validator:
    """A component that checks its proposed configuration: `threshold` must be at most 10 (None: never reports)."""

    def __init__(self, gg: CoreThread, name: str, answer: bool = True) -> None:
        gg.component(name, configuration={"threshold": 1, "label": "a"})
        self.ipc, self.answer = gg.client(name), answer
        self.proposed: list[dict[str, Any]] = []
        self.changes: list[list[str]] = []
        self.ipc.subscribe_to_validate_configuration_updates(on_stream_event=self.on_validate)
        self.ipc.subscribe_to_configuration_update(on_stream_event=self.on_change)

    def on_validate(self, event: ValidateConfigurationUpdateEvents) -> None:
        proposal = event.validate_configuration_update_event
        assert proposal is not None
        self.proposed.append(proposal.configuration)
        if not self.answer:
            return
        accepted = proposal.configuration["threshold"] <= 10
        report = ConfigurationValidityReport(
            status=ConfigurationValidityStatus.ACCEPTED if accepted else ConfigurationValidityStatus.REJECTED,
            deployment_id=proposal.deployment_id,
            message="" if accepted else "threshold is above 10",
        )
        self.ipc.send_configuration_validity_report(configuration_validity_report=report)

    def on_change(self, event: ConfigurationUpdateEvents) -> None:
        assert event.configuration_update_event is not None
        self.changes.append(event.configuration_update_event.key_path)


def test_a_rejected_configuration_fails_the_deployment_and_changes_nothing(gg: CoreThread) -> None:
    """DynamicComponentConfigurationValidator: a REJECTED report fails the deployment (FAILED_NO_STATE_CHANGE)
    before the configuration lands; an accepted one lands, and the component keeps running."""
    validator = Validator(gg, "com.example.Checked")
    name = "com.example.Checked"
    with pytest.raises(DeploymentError, match="threshold is above 10"):
        gg.deploy(name, update_config={name: {"MERGE": {"threshold": 50}}}, policy=QUICK)
    assert validator.proposed == [{"threshold": 50, "label": "a"}]
    assert validator.ipc.get_configuration(key_path=["threshold"]).value == {"threshold": 1}
    gg.deploy(name, update_config={name: {"MERGE": {"threshold": 5}}}, policy=QUICK)
    assert validator.ipc.get_configuration(key_path=["threshold"]).value == {"threshold": 5}
    assert eventually(lambda: validator.changes == [["threshold"]])  # the same connection: not restarted


def test_no_report_within_the_validation_timeout_fails_the_deployment(gg: CoreThread) -> None:
    validator = Validator(gg, "com.example.Mute", answer=False)
    name = "com.example.Mute"
    with pytest.raises(DeploymentError, match="sent no validation report within"):
        gg.deploy(name, update_config={name: {"MERGE": {"threshold": 2}}}, policy=UpdatePolicy(validation_timeout=0.5))
    report = ConfigurationValidityReport(status=ConfigurationValidityStatus.ACCEPTED)
    with pytest.raises(InvalidArgumentsError) as late:
        validator.ipc.send_configuration_validity_report(configuration_validity_report=report)
    assert late.value.message == "Validation request either timed out or was never made"


def test_a_new_version_is_not_asked_to_validate(gg: CoreThread) -> None:
    """The nucleus asks only components that keep their version: a new version's startup reads its
    configuration itself."""
    validator = Validator(gg, "com.example.Upgraded")
    write_recipe(gg.recipes, "com.example.Upgraded", "2.0.0", configuration={"threshold": 99})
    gg.deploy("com.example.Upgraded", version="2.0.0", policy=QUICK)
    assert validator.proposed == []
    assert gg.core.recipes["com.example.Upgraded"].version == "2.0.0"


def test_each_changed_key_path_is_one_event(gg: CoreThread) -> None:
    """ConfigStoreIPCEventStreamAgent: a watcher hears once per changed node, with its path inside the
    configuration; unchanged keys make no event."""
    name = "com.example.Watched"
    gg.component(name, configuration={"a": {"b": 1, "keep": True}, "z": "same"})
    ipc = gg.client(name)
    changes: list[list[str]] = []
    ipc.subscribe_to_configuration_update(
        on_stream_event=lambda e: changes.append(e.configuration_update_event.key_path)
    )
    gg.deploy(name, update_config={name: {"MERGE": {"a": {"b": 2, "c": {"d": 3}}, "z": "same"}}}, policy=QUICK)
    assert eventually(lambda: len(changes) == 2)
    assert sorted(changes) == [["a", "b"], ["a", "c", "d"]]
    with pytest.raises(ResourceNotFoundError) as missing:  # the nucleus watches an existing node only
        ipc.subscribe_to_configuration_update(key_path=["nope"], on_stream_event=lambda e: None)
    assert missing.value.message == "Key not found"


def test_a_configuration_change_restarts_a_component_only_if_its_lifecycle_uses_it(gg: CoreThread) -> None:
    """GenericExternalService: a configuration change that leaves the interpolated lifecycle as it was reaches the
    running process; one that changes it restarts the component."""
    name = "com.example.Greeter"
    write_recipe(
        gg.recipes,
        name,
        configuration={"greeting": "hello", "unused": 1},
        lifecycle={"Run": "echo {configuration:/greeting} >> starts.txt; exec sleep 600"},
    )
    gg.deploy(name, policy=QUICK)
    starts = gg.core.root / "work" / name / "starts.txt"  # scripts run in the component's work folder
    assert eventually(lambda: starts.exists() and starts.read_text() == "hello\n")
    gg.deploy(name, update_config={name: {"MERGE": {"unused": 2}}}, policy=QUICK)
    # Deployments run one after the other: a restart by the first would have written its line before the second's.
    gg.deploy(name, update_config={name: {"MERGE": {"greeting": "bonjour"}}}, policy=QUICK)
    assert eventually(lambda: starts.read_text().endswith("bonjour\n"))
    assert starts.read_text() == "hello\nbonjour\n"


@pytest.mark.parametrize("enabled", [True, False])
def test_interpolate_component_configuration_expands_recipe_variables_in_configuration(enabled: bool) -> None:
    """The nucleus option interpolateComponentConfiguration (developer guide, Greengrass nucleus configuration):
    with it, `{iot:thingName}` in a configuration, accessControl included, is the core's thing name; without it,
    the text stays as written."""
    gg = CoreThread(interpolate_configuration=enabled)
    try:
        name = "com.example.PerThing"
        resource = "things/{iot:thingName}/status"
        gg.component(name, configuration={"topic": resource, "accessControl": pubsub(resource)})
        ipc = gg.client(name)
        expected = "things/test-thing/status" if enabled else resource
        assert ipc.get_configuration(key_path=["topic"]).value == {"topic": expected}
        message = PublishMessage(binary_message=BinaryMessage(message=b"x"))
        ipc.publish_to_topic(topic=expected, publish_message=message)
        if enabled:
            with pytest.raises(UnauthorizedError):
                ipc.publish_to_topic(topic=resource, publish_message=message)
    finally:
        gg.close()
