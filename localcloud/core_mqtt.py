"""The MQTT requests a Greengrass core device makes of AWS IoT Core, to check an IoT policy against them.

From the nucleus (MqttClient, IotJobsHelper, ShadowDeploymentListener, FleetStatusService) and the developer
guide (device-auth, "Minimal AWS IoT policy for AWS IoT Greengrass V2 core devices"):
- it connects with the thing name as client id, and opens more connections as `<thing>#2`, `<thing>#3`, ...
  once one connection holds its share of subscriptions, so any subscription may travel on any of them;
- deployments come over the jobs topics and the `AWSManagedGreengrassV2Deployment` named shadow;
- fleet status goes to `$aws/things/<thing>/greengrassv2/health/json`;
- components reach IoT Core through the nucleus (`aws.greengrass.ipc.mqttproxy`): each topic their
  PublishToIoTCore policies allow is published, each filter of SubscribeToIoTCore subscribed and received.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.iotpolicy import Connection, Request, Statement, allowed

DEPLOYMENT_SHADOW = "AWSManagedGreengrassV2Deployment"
MQTTPROXY = "aws.greengrass.ipc.mqttproxy"
EXTRA_CONNECTIONS = 2  # `#2` and `#3`: enough to show that no request depends on the client id being the thing name


@dataclass(frozen=True)
class ProxiedTopics:
    """What deployed components may do in IoT Core through the nucleus."""

    publish: frozenset[str] = field(default_factory=frozenset)
    subscribe: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, configurations: Iterable[Mapping[str, Any]]) -> ProxiedTopics:
        """From the components' configurations (their `accessControl`)."""
        publish: set[str] = set()
        subscribe: set[str] = set()
        for configuration in configurations:
            policies = (configuration.get("accessControl") or {}).get(MQTTPROXY) or {}
            for policy in policies.values():
                operations = set(policy.get("operations") or [])
                resources = set(policy.get("resources") or [])
                if operations & {"aws.greengrass#PublishToIoTCore", "*"}:
                    publish |= resources
                if operations & {"aws.greengrass#SubscribeToIoTCore", "*"}:
                    subscribe |= resources
        return cls(frozenset(publish), frozenset(subscribe))


def requests(
    thing: str, region: str, account: str, proxied: ProxiedTopics = ProxiedTopics()
) -> list[tuple[Connection, Request]]:
    """Every (connection, request) the core makes: on its first connection and on its extra ones alike."""
    connections = [Connection(region, account, thing, thing)] + [
        Connection(region, account, f"{thing}#{n}", thing) for n in range(2, 2 + EXTRA_CONNECTIONS)
    ]
    jobs = f"$aws/things/{thing}/jobs"
    shadow = f"$aws/things/{thing}/shadow/name/{DEPLOYMENT_SHADOW}"
    filters = [
        f"{jobs}/notify",
        f"{jobs}/$next/get/accepted",
        f"{jobs}/$next/get/rejected",
        f"{jobs}/+/update/accepted",
        f"{jobs}/+/update/rejected",
        f"{shadow}/update/accepted",
        f"{shadow}/update/rejected",
        f"{shadow}/update/delta",
        f"{shadow}/get/accepted",
        f"{shadow}/get/rejected",
        *sorted(proxied.subscribe),
    ]
    topics = [
        f"{jobs}/$next/get",
        f"{jobs}/deployment-1/update",
        f"{shadow}/update",
        f"{shadow}/get",
        f"$aws/things/{thing}/greengrassv2/health/json",
        *sorted(proxied.publish),
    ]
    found: list[tuple[Connection, Request]] = []
    for connection in connections:
        found.append((connection, connection.connect()))
        found += [(connection, connection.subscribe(f)) for f in filters]
        found += [(connection, connection.receive(_a_topic_of(f))) for f in filters]
        found += [(connection, connection.publish(t)) for t in topics]
    return found


def _a_topic_of(topic_filter: str) -> str:
    """A topic the filter matches, for the Receive check (`+` and `#` stand for one level)."""
    return "/".join("x" if level in ("+", "#") else level for level in topic_filter.split("/"))


def refused(
    thing: str, region: str, account: str, policies: list[list[Statement]], proxied: ProxiedTopics = ProxiedTopics()
) -> list[str]:
    """The core's requests the policies do not allow, each as `client id: action resource`."""
    return [
        f"{connection.client_id}: {request.action} {request.resource}"
        for connection, request in requests(thing, region, account, proxied)
        if not allowed(policies, request, connection)
    ]
