"""Recipes as the core uses them: loaded by their content (recipeformat), the manifest and lifecycle for this
platform picked, steps and artifacts read, and recipe variables (`{artifacts:path}`, `{configuration:/a/b}`,
...) expanded in lifecycle scripts.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipeformat.document import STEPS, RecipeError, load, recipe_files
from recipeformat.document import lifecycle as normalized_lifecycle
from recipeformat.platform import best_manifest as _best_manifest
from recipeformat.platform import describe, manifest_lifecycle, this_device

__all__ = ["Artifact", "Paths", "Recipe", "RecipeError", "Step", "find", "interpolate", "parse"]

log = logging.getLogger("localgg.recipe")
# Default step timeouts of the nucleus (seconds); Run has none.
DEFAULT_TIMEOUTS = {"Bootstrap": 120.0, "Install": 120.0, "Startup": 120.0, "Shutdown": 15.0, "Recover": 60.0}
_VARIABLE = re.compile(
    r"\{(?:(?P<component>[A-Za-z0-9._-]+):)?(?P<kind>artifacts|configuration|work|iot|kernel)"
    r":(?P<key>[^}]*)\}"
)


@dataclass(frozen=True)
class Step:
    script: str
    timeout: float | None
    env: dict[str, str] = field(default_factory=dict)
    skip_if: str | None = None  # `onpath <program>` or `exists <file>`
    requires_privilege: bool = False


@dataclass(frozen=True)
class Artifact:
    uri: str
    unarchive: bool
    execute: str = "NONE"  # Permission.Execute: NONE, OWNER or ALL
    read: str = "OWNER"  # Permission.Read: NONE, OWNER or ALL
    digest: str | None = None  # base64 SHA-256, as the service writes it (recipeformat.digest); local recipes lack it
    algorithm: str | None = None

    @property
    def filename(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def docker_image(self) -> str | None:
        return self.uri.removeprefix("docker:") if self.uri.startswith("docker:") else None


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    path: Path
    dependencies: dict[str, dict[str, Any]]
    default_configuration: dict[str, Any]
    steps: dict[str, Step]
    env: dict[str, str]
    artifacts: list[Artifact]


def _env(node: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in node.items()} if isinstance(node, dict) else {}


def _step(name: str, body: Any, where: str) -> Step | None:
    if isinstance(body, str):
        return Step(body, DEFAULT_TIMEOUTS.get(name))
    if isinstance(body, dict):
        script = body.get("Script")
        if not isinstance(script, str):
            raise RecipeError(f"{where}: lifecycle step {name} has no Script")
        timeout = body.get("Timeout", DEFAULT_TIMEOUTS.get(name))
        skip_if = body.get("Skipif")
        return Step(
            script,
            float(timeout) if timeout is not None else None,
            _env(body.get("Setenv")),
            str(skip_if).strip() if skip_if else None,
            str(body.get("RequiresPrivilege", "false")).lower() == "true",
        )
    return None


def _artifact(raw: dict[str, Any]) -> Artifact:
    permission = raw.get("Permission") or {}
    return Artifact(
        str(raw["URI"]),
        str(raw.get("Unarchive", "NONE")).upper() == "ZIP",
        str(permission.get("Execute", "NONE")).upper(),
        str(permission.get("Read", "OWNER")).upper(),
        str(raw["Digest"]) if raw.get("Digest") else None,
        str(raw["Algorithm"]) if raw.get("Algorithm") else None,
    )


def parse(path: Path, platform: dict[str, str] | None = None) -> Recipe:
    document = load(path, log.warning)
    name, version = str(document["ComponentName"]), str(document["ComponentVersion"])
    platform = platform or this_device()
    manifest = _best_manifest(document["Manifests"], platform) if document["Manifests"] else {}
    if manifest is None:
        raise RecipeError(f"{path}: {name} {version} has no manifest for this platform ({describe(platform)})")
    selected = manifest_lifecycle(document, manifest)
    if not isinstance(selected, dict):
        raise RecipeError(f"{path}: the Lifecycle of {name} {version} is not a mapping")
    lifecycle = normalized_lifecycle(selected, f"{path}: Lifecycle", log.warning)  # a selection's keys, too
    steps = {step: parsed for step in STEPS if (parsed := _step(step, lifecycle.get(step), str(path))) is not None}
    artifacts = [_artifact(a) for a in manifest.get("Artifacts") or [] if a.get("URI")]
    configuration = (document.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
    if isinstance(configuration, str):
        configuration = json.loads(configuration)
    dependencies = {str(k): dict(v or {}) for k, v in (document.get("ComponentDependencies") or {}).items()}
    return Recipe(name, version, path, dependencies, configuration, steps, _env(lifecycle.get("Setenv")), artifacts)


def find(recipe_dir: Path, name: str, version: str) -> Path:
    """The recipe file for name and version, found by its content as the nucleus does (the file name is free);
    a file that does not parse is an error that names it."""
    seen = []
    for path in recipe_files(recipe_dir):
        document = load(path, lambda message: None)
        found = (str(document["ComponentName"]), str(document["ComponentVersion"]))
        if found == (name, version):
            return path
        seen.append(f"{found[0]}={found[1]}")
    raise RecipeError(f"no recipe for {name}={version} in {recipe_dir} (found: {', '.join(seen) or 'none'})")


@dataclass(frozen=True)
class Paths:
    """Where a component's files are on this core."""

    root: Path
    component: str
    version: str

    @property
    def artifacts(self) -> Path:
        return self.root / "packages" / "artifacts" / self.component / self.version

    @property
    def decompressed(self) -> Path:
        return self.root / "packages" / "artifacts-unarchived" / self.component / self.version

    @property
    def work(self) -> Path:
        return self.root / "work" / self.component


def _configuration_value(configuration: dict[str, Any], pointer: str) -> str | None:
    node: Any = configuration
    for key in [k for k in pointer.split("/") if k]:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, str) else json.dumps(node)


@dataclass(frozen=True)
class Dependency:
    """What a recipe's variables can read of a component it depends on: its files and its configuration."""

    paths: Paths
    configuration: dict[str, Any]


def interpolate(
    text: str,
    paths: Paths,
    configuration: dict[str, Any],
    thing_name: str,
    dependencies: dict[str, Dependency] | None = None,
) -> str:
    """Expand recipe variables, `{Dependency:artifacts:path}` and `{Dependency:configuration:/key}` included for the
    components the recipe depends on; an unknown one is left as written, as the nucleus does."""

    def replace(match: re.Match[str]) -> str:
        component, kind, key = match.group("component"), match.group("kind"), match.group("key")
        other = (dependencies or {}).get(component) if component else None
        if component and other is None:
            return match.group(0)
        target = other.paths if other else paths
        if kind == "artifacts":
            return str({"path": target.artifacts, "decompressedPath": target.decompressed}.get(key, match.group(0)))
        if kind == "work" and key == "path":
            return str(target.work)
        if kind == "configuration":
            value = _configuration_value(other.configuration if other else configuration, key)
            return value if value is not None else match.group(0)
        if kind == "iot" and key == "thingName":
            return thing_name
        if kind == "kernel" and key == "rootPath":
            return str(paths.root)
        return match.group(0)

    return _VARIABLE.sub(replace, text)
