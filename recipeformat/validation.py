"""What makes a recipe acceptable to the greengrassv2 service (CreateComponentVersion), checked on a normalized
document: the recipe reference's required fields and types, and the API reference's name and version patterns.
The tooling checks it before it publishes; the local cloud refuses what fails it, as the service does."""

from __future__ import annotations

import re
from typing import Any

from recipeformat.document import STEPS, RecipeError
from recipeformat.versions import requirement, version

FORMAT_VERSIONS = ("2020-01-25",)
# Component names: letters, digits, dots, dashes and underscores (what the service and GDK accept).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ARTIFACT_SCHEMES = ("s3://", "docker:", "greengrass:")


def problems(document: dict[str, Any]) -> list[str]:
    found: list[str] = []
    fmt = document.get("RecipeFormatVersion")
    if fmt is None:
        found.append("RecipeFormatVersion is required")
    elif str(fmt) not in FORMAT_VERSIONS:
        found.append(f"RecipeFormatVersion {fmt!r} is not one of {', '.join(FORMAT_VERSIONS)}")
    name = document.get("ComponentName")
    if not name:
        found.append("ComponentName is required")
    elif not isinstance(name, str) or not NAME.match(name):
        found.append(f"ComponentName {name!r} may hold only letters, digits, '.', '-' and '_' (128 at most)")
    number = document.get("ComponentVersion")
    if not number:
        found.append("ComponentVersion is required")
    else:
        try:
            version(str(number))
        except RecipeError as exc:
            found.append(f"ComponentVersion: {exc}")
    dependencies = document.get("ComponentDependencies") or {}
    if not isinstance(dependencies, dict):
        found.append("ComponentDependencies must be a mapping of component names")
    else:
        for dependency, spec in dependencies.items():
            try:
                requirement(str((spec or {}).get("VersionRequirement", "*")))
            except RecipeError as exc:
                found.append(f"ComponentDependencies.{dependency}: {exc}")
    for index, manifest in enumerate(document.get("Manifests") or []):
        where = f"Manifests[{index}]"
        if not isinstance(manifest, dict):
            found.append(f"{where} must be a mapping")
            continue
        if not isinstance(manifest.get("Platform") or {}, dict):
            found.append(f"{where}.Platform must be a mapping")
        lifecycle = manifest.get("Lifecycle") or {}
        if not isinstance(lifecycle, dict):
            found.append(f"{where}.Lifecycle must be a mapping")
        else:
            for step in STEPS:
                body = lifecycle.get(step)
                if body is not None and not isinstance(body, str | dict):
                    found.append(f"{where}.Lifecycle.{step} must be a script or a mapping with Script")
        for number_, artifact in enumerate(manifest.get("Artifacts") or []):
            uri = artifact.get("URI") if isinstance(artifact, dict) else None
            if not isinstance(uri, str) or not uri.startswith(ARTIFACT_SCHEMES):
                found.append(f"{where}.Artifacts[{number_}].URI must be an s3://, docker: or greengrass: URI")
    return found


def s3_artifacts(document: dict[str, Any]) -> list[str]:
    return [
        str(artifact["URI"])
        for manifest in document.get("Manifests") or []
        if isinstance(manifest, dict)
        for artifact in manifest.get("Artifacts") or []
        if isinstance(artifact, dict) and str(artifact.get("URI", "")).startswith("s3://")
    ]
