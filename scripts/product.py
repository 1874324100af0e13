"""The product as the tooling knows it: where the checkout is, its components (one table: folder, name, how their
recipes' values are made), and the subscriber's prediction lines as its log shows them (`result: [6.573914
4.869721]`, the reference device's format)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Made:
    """What a release (or the demo) made that the components' recipes refer to."""

    image: str  # the subscriber's image, pinned by digest (the demo's: a local tag)
    model_values: Mapping[str, Any]  # the model template's values (scripts/publishing/models.py)
    publisher_zips: Mapping[str, str]  # the publisher's zip's URI, by architecture (Greengrass's names)

    @property
    def architectures(self) -> tuple[str, ...]:
        """The device architectures the release serves: each got its image and its zip."""
        return tuple(self.publisher_zips)


@dataclass(frozen=True)
class Component:
    """One component as the tooling knows it."""

    folder: str  # components/<folder>: its code, and its recipe.yaml, the template
    suffix: str  # its name in a stack's namespace: <namespace>.<suffix>
    # The template's values (beside its name and version, which every template has), from what a release made.
    values: Callable[[Components, Made], dict[str, Any]]
    own: Callable[[Made, str], dict[str, str]] = lambda made, architecture: {}  # one architecture's own values

    @property
    def template(self) -> Path:
        return REPO / "components" / self.folder / "recipe.yaml"

    def architectures(self, made: Made) -> dict[str, dict[str, str]]:
        return {architecture: self.own(made, architecture) for architecture in made.architectures}


@dataclass(frozen=True)
class Components:
    """The components' names in one stack's namespace (Terraform's `component_namespace`, `com.<name_prefix>`):
    component names are account-wide in Greengrass, so two stacks in one account list, deploy and delete only
    their own versions."""

    namespace: str
    telemetry_prefix: str = "edgeml"  # Terraform's telemetry_topic_prefix
    telemetry_window: int = 300  # Terraform's telemetry_window_seconds

    def of(self, component: Component) -> str:
        return f"{self.namespace}.{component.suffix}"

    def _named(self, folder: str) -> str:
        return self.of(next(c for c in COMPONENTS if c.folder == folder))

    @property
    def publisher(self) -> str:
        return self._named("publisher")

    @property
    def subscriber(self) -> str:
        return self._named("subscriber")

    @property
    def model(self) -> str:
        return self._named("model")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.of(component) for component in COMPONENTS)

    def subscriber_values(self, image: str, docker_network: str = "none") -> dict[str, str | int]:
        """The subscriber template's values: its image (pinned by digest), the model component it mounts, and the
        container's network, a deploy-time choice (`none`, or `host` for AWS credentials in the container) that the
        component cannot change over IPC, as it could a configuration value."""
        return {
            "image": image,
            "model_component": self.model,
            "docker_network": docker_network,
            "telemetry_prefix": self.telemetry_prefix,
            "telemetry_window_seconds": self.telemetry_window,
        }


# Every component, in the order a release registers them: the template check, `make deploy`, `make demo` and
# `make destroy` read this table, so a new component is its folder under components/ and one entry here (and, if
# it needs an artifact that no other component has, the step that makes it in scripts/pipeline.py).
COMPONENTS = (
    Component("model", "WineQualityModel", lambda names, made: dict(made.model_values)),
    Component("subscriber", "WineQualitySubscriber", lambda names, made: names.subscriber_values(made.image)),
    Component(
        "publisher",
        "WineQualityPublisher",
        lambda names, made: {},
        lambda made, architecture: {"artifact_uri": made.publisher_zips[architecture]},
    ),
)
DEFAULT = Components("com.edgeml")  # the namespace of the default `name_prefix`
# `make demo`'s own: its core shares the machine's engine with the local cloud's, and the subscriber's container is
# named after its component (components/subscriber/recipe.yaml), so the two never meet. Its core has no AWS IoT Core
# to send telemetry to: the windows are off.
DEMO = Components("com.edgeml.demo", telemetry_prefix="")
RESULT = re.compile(r"result: (\[[^\]]*\])")
AGREEMENT = re.compile(r"shadow: count=(\d+) mean_abs_diff=([0-9.e+-]+) max_abs_diff=([0-9.e+-]+)")
OVERLOAD = re.compile(r"overload: dropped=(\d+)")


def follow_predictions(
    log: Path,
    count: int,
    timeout: float,
    since: int = 0,
    on_prediction: Callable[[str], None] = lambda line: None,
    check: Callable[[], None] = lambda: None,
) -> list[str]:
    """The first `count` predictions (`[6.573914 4.869721]`) the subscriber writes after byte `since` of its log,
    each passed to `on_prediction` as it comes; fewer if `timeout` runs out first. `check` runs on every look and
    may raise to give up early (the core died)."""
    found: list[str] = []
    offset = since
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        check()
        try:
            with log.open("rb") as stream:
                stream.seek(offset)
                chunk = stream.read()
        except OSError:
            chunk = b""
        # Only whole lines: a line being written is read again once it is complete.
        complete = chunk[: chunk.rfind(b"\n") + 1]
        offset += len(complete)
        for match in RESULT.finditer(complete.decode(errors="replace")):
            if len(found) < count:
                found.append(match.group(1))
                on_prediction(match.group(1))
        if len(found) < count:
            time.sleep(0.1)
    return found


def last_agreement(log: Path) -> dict[str, float] | None:
    """The challenger's running agreement with the champion as the subscriber last logged it (`shadow: count=...`),
    or None before its first shadow record."""
    try:
        found = AGREEMENT.findall(log.read_text(errors="replace"))
    except OSError:
        return None
    if not found:
        return None
    count, mean, largest = found[-1]
    return {"count": int(count), "mean_abs_diff": float(mean), "max_abs_diff": float(largest)}


def dropped(log: Path) -> int:
    """Messages the subscriber dropped unscored since it started, as it last logged them (`overload: dropped=N`):
    a flood outran it, and its queue kept the freshest."""
    try:
        found = OVERLOAD.findall(log.read_text(errors="replace"))
    except OSError:
        return 0
    return int(found[-1]) if found else 0
