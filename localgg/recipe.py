"""Recipes as a local deployment finds them: `<recipe-dir>/<name>-<version>.json|yaml|yml`.

Loads and checks a recipe, picks the manifest for this platform, and expands the recipe variables
(`{artifacts:path}`, `{configuration:/a/b}`, ...) in lifecycle scripts.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPE_SUFFIXES = (".json", ".yaml", ".yml")
STEPS = ("Install", "Startup", "Run", "Shutdown", "Recover")
# Default step timeouts of the nucleus (seconds); Run has none.
DEFAULT_TIMEOUTS = {"Install": 120.0, "Startup": 120.0, "Shutdown": 15.0, "Recover": 60.0}
_VARIABLE = re.compile(
    r"\{(?:(?P<component>[A-Za-z0-9._-]+):)?(?P<kind>artifacts|configuration|work|iot|kernel)"
    r":(?P<key>[^}]*)\}"
)


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the problem."""


def this_platform() -> dict[str, str]:
    machine = platform.machine().lower()
    architecture = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine, machine)
    return {"os": "linux", "architecture": architecture}


@dataclass(frozen=True)
class Step:
    script: str
    timeout: float | None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    uri: str
    unarchive: bool

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


def _manifest_matches(manifest: dict[str, Any], wanted: dict[str, str]) -> bool:
    platform_spec = manifest.get("Platform") or {}
    return all(str(value) in ("*", wanted[key]) for key, value in platform_spec.items() if key in wanted)


def _step(name: str, body: Any) -> Step | None:
    if isinstance(body, str):
        return Step(body, DEFAULT_TIMEOUTS.get(name))
    if isinstance(body, dict):
        script = body.get("Script") or body.get("script")
        if not isinstance(script, str):
            return None
        timeout = body.get("Timeout", DEFAULT_TIMEOUTS.get(name))
        env = {str(k): str(v) for k, v in (body.get("Setenv") or body.get("setenv") or {}).items()}
        return Step(script, float(timeout) if timeout is not None else None, env)
    return None


def parse(path: Path, wanted: dict[str, str] | None = None) -> Recipe:
    try:
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot parse the recipe: {exc}") from None
    if not isinstance(document, dict):
        raise RecipeError(f"{path}: a recipe is a mapping, not {type(document).__name__}")
    name, version = document.get("ComponentName"), document.get("ComponentVersion")
    if not name or not version:
        raise RecipeError(f"{path}: ComponentName and ComponentVersion are required")
    if path.stem != f"{name}-{version}":
        raise RecipeError(f"{path}: the file must be named {name}-{version}{path.suffix} after its component")
    wanted = wanted or this_platform()
    manifests = document.get("Manifests") or []
    manifest = next((m for m in manifests if isinstance(m, dict) and _manifest_matches(m, wanted)), None)
    if manifest is None:
        raise RecipeError(f"{path}: no manifest for platform {wanted['os']}/{wanted['architecture']}")
    lifecycle = manifest.get("Lifecycle") or {}
    steps = {step: parsed for step in STEPS if (parsed := _step(step, lifecycle.get(step))) is not None}
    env = {str(k): str(v) for k, v in (lifecycle.get("Setenv") or lifecycle.get("setenv") or {}).items()}
    artifacts = [
        Artifact(str(a["URI"]), str(a.get("Unarchive", "NONE")).upper() == "ZIP")
        for a in manifest.get("Artifacts") or []
        if isinstance(a, dict) and a.get("URI")
    ]
    configuration = (document.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
    if isinstance(configuration, str):
        configuration = json.loads(configuration)
    dependencies = {str(k): dict(v or {}) for k, v in (document.get("ComponentDependencies") or {}).items()}
    return Recipe(str(name), str(version), path, dependencies, configuration, steps, env, artifacts)


def find(recipe_dir: Path, name: str, version: str) -> Path:
    for suffix in RECIPE_SUFFIXES:
        candidate = recipe_dir / f"{name}-{version}{suffix}"
        if candidate.is_file():
            return candidate
    available = sorted(p.stem for p in recipe_dir.glob("*") if p.suffix in RECIPE_SUFFIXES)
    raise RecipeError(f"no recipe for {name}={version} in {recipe_dir} (found: {', '.join(available) or 'none'})")


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


def interpolate(
    text: str, paths: Paths, configuration: dict[str, Any], thing_name: str, others: dict[str, Paths] | None = None
) -> str:
    """Expand recipe variables; an unknown one is left as written, as the nucleus does."""

    def replace(match: re.Match[str]) -> str:
        component, kind, key = match.group("component"), match.group("kind"), match.group("key")
        target = (others or {}).get(component, None) if component else paths
        if target is None:
            return match.group(0)
        if kind == "artifacts":
            return str({"path": target.artifacts, "decompressedPath": target.decompressed}.get(key, match.group(0)))
        if kind == "work" and key == "path":
            return str(target.work)
        if kind == "configuration" and component is None:
            value = _configuration_value(configuration, key)
            return value if value is not None else match.group(0)
        if kind == "iot" and key == "thingName":
            return thing_name
        if kind == "kernel" and key == "rootPath":
            return str(paths.root)
        return match.group(0)

    return _VARIABLE.sub(replace, text)
