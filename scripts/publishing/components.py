"""Component versions in Greengrass: registered only when the recipe changed, never the same version twice.

The rendered recipe is compared with the latest registered version's recipe, rendered with that version's
number: equal means nothing to do. Otherwise the next version (patch by default) is created with a client token
derived from the recipe (a retried call cannot create two), and we wait until Greengrass says DEPLOYABLE.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from recipeformat.versions import version as semver
from scripts.aws import AwsError, calling, error_code
from scripts.errors import ToolError
from scripts.publishing import recipes

BUMPS = ("patch", "minor", "major")
FIRST_VERSION = "1.0.0"


class ComponentError(ToolError):
    """A component version that cannot be registered or never became deployable."""


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    arn: str
    created: bool


def component_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:greengrass:{region}:{account}:components:{name}"


def next_version(current: str | None, bump: str) -> str:
    if current is None:
        return FIRST_VERSION
    parsed = semver(current)
    major, minor, patch = parsed.major, parsed.minor, parsed.patch
    return {"patch": f"{major}.{minor}.{patch + 1}", "minor": f"{major}.{minor + 1}.0", "major": f"{major + 1}.0.0"}[
        bump
    ]


def versions(gg: Any, arn: str) -> list[dict[str, Any]]:
    """Every registered version of a component ([] for a component never registered)."""
    found: list[dict[str, Any]] = []
    with calling(f"list the versions of {arn}"):
        try:
            for page in gg.get_paginator("list_component_versions").paginate(arn=arn):
                found += page.get("componentVersions", [])
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    return found


def latest(gg: Any, arn: str) -> tuple[str, str] | None:
    """(version, version ARN) of the newest registered version, or None for a component never registered."""
    registered = versions(gg, arn)
    if not registered:
        return None
    newest = max(registered, key=lambda v: semver(v["componentVersion"]))
    return newest["componentVersion"], newest["arn"]


def registered_recipe(gg: Any, version_arn: str) -> dict[str, Any]:
    with calling(f"get the recipe of {version_arn}"):
        response = gg.get_component(arn=version_arn, recipeOutputFormat="JSON")
    recipe: dict[str, Any] = json.loads(response["recipe"])
    return recipe


def _as_published(recipe: dict[str, Any]) -> dict[str, Any]:
    """A registered recipe as it was sent: without the digests the service adds to each artifact."""
    published = copy.deepcopy(recipe)
    for manifest in published.get("Manifests") or []:
        for artifact in manifest.get("Artifacts") or []:
            artifact.pop("Digest", None)
            artifact.pop("Algorithm", None)
    return published


def wait_deployable(
    gg: Any, version_arn: str, attempts: int = 60, interval: float = 2.0, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Until the version is DEPLOYABLE (new versions go through REQUESTED and INITIATED first); checks come
    quickly at first, then every `interval` seconds."""
    state = "?"
    for attempt in range(attempts):
        with calling(f"describe {version_arn}"):
            status = gg.describe_component(arn=version_arn).get("status", {})
        state = status.get("componentState", "?")
        if state == "DEPLOYABLE":
            return
        if state == "FAILED":
            errors = "; ".join(f"{k}: {v}" for k, v in (status.get("errors") or {}).items())
            raise ComponentError(f"{version_arn} is FAILED: {status.get('message', '')} {errors}".strip())
        if attempt + 1 < attempts:
            sleep(min(interval, 0.25 * 2**attempt))
    raise ComponentError(f"{version_arn} is still {state} after {attempts} checks; look at it in the console")


def register(
    gg: Any,
    kind: str,
    name: str,
    values: Mapping[str, recipes.Value],
    region: str,
    account: str,
    bump: str = "patch",
    wait: Callable[[Any, str], None] = wait_deployable,
    architectures: dict[str, dict[str, str]] | None = None,
) -> Registered:
    """Register the rendered `kind` template (one manifest per architecture, see `recipes.render_component`) as
    component `name`, unless the latest version is the same recipe."""
    arn = component_arn(region, account, name)
    values = {**values, "component_name": name}
    found = latest(gg, arn)
    if found is not None:
        version, version_arn = found
        rendered = recipes.render_component(kind, {**values, "component_version": version}, architectures)
        if rendered == _as_published(registered_recipe(gg, version_arn)):
            return Registered(name, version, version_arn, created=False)
    version = next_version(found[0] if found else None, bump)
    recipe = recipes.render_component(kind, {**values, "component_version": version}, architectures)
    body = recipes.to_json(recipe).encode()
    try:
        with calling(f"create {name} {version}"):
            created = gg.create_component_version(inlineRecipe=body, clientToken=hashlib.sha256(body).hexdigest()[:64])
    except AwsError as exc:
        raise ComponentError(str(exc)) from exc
    wait(gg, created["arn"])
    return Registered(name, version, created["arn"], created=True)
