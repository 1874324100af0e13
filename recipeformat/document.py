"""A recipe document, read as the nucleus reads it: keys are case-insensitive (its recipe model accepts
`Uri`, `URI` and `uri`; its configuration lookups find `run` as well as `Run`), so every key the format
defines is brought to one spelling here; free-form parts (configuration values, dependency names, Setenv
variables, platform attributes) keep theirs. Keys the format does not define are reported, never dropped
silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".json", ".yaml", ".yml")
# Lifecycle steps in the order a component goes through them.
STEPS = ("Bootstrap", "Install", "Startup", "Run", "Shutdown", "Recover")


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names it and the problem."""


def _spelling(*names: str) -> dict[str, str]:
    return {name.lower(): name for name in names}


TOP = _spelling(
    "RecipeFormatVersion",
    "ComponentName",
    "ComponentVersion",
    "ComponentDescription",
    "ComponentPublisher",
    "ComponentSource",
    "ComponentType",
    "ComponentConfiguration",
    "ComponentDependencies",
    "Manifests",
    "Lifecycle",
)
CONFIGURATION = _spelling("DefaultConfiguration")
DEPENDENCY = _spelling("VersionRequirement", "DependencyType")
MANIFEST = _spelling("Name", "Platform", "Lifecycle", "Selections", "Artifacts")
ARTIFACT = _spelling("URI", "Digest", "Algorithm", "Unarchive", "Permission")
PERMISSION = _spelling("Read", "Execute")
LIFECYCLE = _spelling(*STEPS, "Setenv")
STEP = _spelling("Script", "Timeout", "Setenv", "RequiresPrivilege", "Skipif", "BootstrapOnRollback")
PLATFORM = _spelling("os", "architecture", "architecture.detail")

Report = Callable[[str], None]


def _keys(node: Any, known: dict[str, str], where: str, report: Report) -> dict[str, Any]:
    """A mapping's keys in their canonical spelling; unknown keys are kept as written and reported."""
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        canonical = known.get(str(key).lower())
        if canonical is None:
            report(f"{where}: unknown key {key!r} ignored")
            canonical = str(key)
        out[canonical] = value
    return out


def _step(body: Any, where: str, report: Report) -> Any:
    return _keys(body, STEP, where, report) if isinstance(body, dict) else body


def lifecycle(node: Any, where: str, report: Report) -> dict[str, Any]:
    """Steps and Setenv in their canonical spelling. A key that is neither may be a selection key of a global
    lifecycle (developer guide, recipe reference: "Selections"), so it is kept as written, unreported."""
    out = _keys(node, LIFECYCLE, where, lambda message: None)
    steps = frozenset(STEPS)
    return {key: _step(value, f"{where}.{key}", report) if key in steps else value for key, value in out.items()}


def normalize(document: Any, source: str, report: Report) -> dict[str, Any]:
    """The document with the format's keys in one spelling; `source` names it in messages."""
    if not isinstance(document, dict):
        raise RecipeError(f"{source}: a recipe is a mapping, not {type(document).__name__}")
    top = _keys(document, TOP, source, report)
    if "ComponentConfiguration" in top:
        top["ComponentConfiguration"] = _keys(
            top["ComponentConfiguration"], CONFIGURATION, f"{source}: ComponentConfiguration", report
        )
    if isinstance(top.get("ComponentDependencies"), dict):
        top["ComponentDependencies"] = {
            name: _keys(spec, DEPENDENCY, f"{source}: dependency {name}", report)
            for name, spec in top["ComponentDependencies"].items()
        }
    if "Lifecycle" in top:
        top["Lifecycle"] = lifecycle(top["Lifecycle"], f"{source}: Lifecycle", report)
    manifests = top.get("Manifests")
    if manifests is not None and not isinstance(manifests, list):
        raise RecipeError(f"{source}: Manifests must be a list")
    top["Manifests"] = [_manifest(m, f"{source}: manifest {i + 1}", report) for i, m in enumerate(manifests or [])]
    return top


def _manifest(node: Any, where: str, report: Report) -> dict[str, Any]:
    manifest = _keys(node, MANIFEST, where, report)
    if isinstance(manifest.get("Platform"), dict):
        manifest["Platform"] = {PLATFORM.get(str(k).lower(), str(k)): v for k, v in manifest["Platform"].items()}
    if "Lifecycle" in manifest:
        manifest["Lifecycle"] = lifecycle(manifest["Lifecycle"], f"{where}: Lifecycle", report)
    artifacts = manifest.get("Artifacts") or []
    manifest["Artifacts"] = [_artifact(a, f"{where}: artifact {i + 1}", report) for i, a in enumerate(artifacts)]
    return manifest


def _artifact(node: Any, where: str, report: Report) -> dict[str, Any]:
    artifact = _keys(node, ARTIFACT, where, report)
    if "Permission" in artifact:
        artifact["Permission"] = _keys(artifact["Permission"], PERMISSION, f"{where}: Permission", report)
    return artifact


class _NoAliases(yaml.SafeLoader):
    """YAML without aliases: a recipe spells every value out, and an alias is how a few hundred bytes expand to
    gigabytes in the parser (the "billion laughs")."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not accepted in a recipe", mark)
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes) -> Any:
    """YAML (or JSON, which is YAML) as a recipe may be written: plain data, no aliases. yaml.YAMLError otherwise."""
    return yaml.load(text, Loader=_NoAliases)  # a SafeLoader: plain data only


def parse_text(text: str, source: str) -> Any:
    """JSON or YAML (JSON is YAML, but JSON's own parser gives the better message for a .json file)."""
    try:
        return json.loads(text) if source.endswith(".json") else load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise RecipeError(f"{source}: cannot parse the recipe: {exc}") from None


def load(path: Path, report: Report) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc}") from None
    document = normalize(parse_text(text, str(path)), str(path), report)
    name, version = document.get("ComponentName"), document.get("ComponentVersion")
    if not name or not version:
        raise RecipeError(f"{path}: ComponentName and ComponentVersion are required")
    return document


def recipe_files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
