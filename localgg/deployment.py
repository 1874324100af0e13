"""Local deployments, with the flags of `greengrass-cli deployment create`.

A deployment is the desired set of components: the current one, minus `--remove`, plus `--merge NAME=VERSION`
(recipes from `--recipeDir`, artifacts from `<artifactDir>/<NAME>/<VERSION>/`), with `--update-config`
(`{"NAME": {"MERGE": {...}, "RESET": ["/json/pointer"]}}`) applied to configurations. Dependencies must be in
the set or be one of the nucleus's built-in components; the start order puts dependencies first.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localgg.permissions import FOLDER, artifact_mode, set_artifact_permission
from localgg.recipe import Paths, Recipe, RecipeError, find, parse
from localgg.updates import UpdatePolicy
from recipeformat import digest
from recipeformat.versions import satisfies

# Components a real core provides itself; a recipe may depend on them without deploying them.
BUILT_IN = frozenset(
    {
        "aws.greengrass.Nucleus",
        "aws.greengrass.DockerApplicationManager",
        "aws.greengrass.TokenExchangeService",
        "aws.greengrass.Cli",
        "aws.greengrass.LogManager",
        "aws.greengrass.ShadowManager",
        "aws.greengrass.SecretManager",
        "aws.greengrass.StreamManager",
    }
)


class DeploymentError(ValueError):
    """A deployment that cannot be applied; nothing was changed."""


class ConfigurationNotValid(DeploymentError):
    """A running component rejected its proposed configuration, or did not answer in time (the nucleus's
    COMPONENT_CONFIGURATION_NOT_VALID); nothing was changed."""


@dataclass(frozen=True)
class DeploymentRequest:
    recipe_dir: Path | None = None
    artifact_dir: Path | None = None
    merge: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    update_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployment_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # a local deployment's id is a UUID
    policy: UpdatePolicy = field(default_factory=UpdatePolicy)


def parse_merge(values: list[str]) -> dict[str, str]:
    merge = {}
    for value in values:
        name, sep, version = value.partition("=")
        if not sep or not name or not version:
            raise DeploymentError(f"--merge {value!r}: expected NAME=VERSION")
        merge[name] = version
    return merge


def parse_update_config(value: str | None) -> dict[str, dict[str, Any]]:
    if not value:
        return {}
    # A JSON string or a file path, as greengrass-cli takes it (`@path` too).
    path = Path(value[1:] if value.startswith("@") else value)
    try:
        text = path.read_text() if value.startswith("@") or path.is_file() else value
    except OSError as exc:
        raise DeploymentError(f"--update-config: cannot read {path}: {exc}") from None
    try:
        update = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"--update-config is not JSON: {exc}") from None
    if not isinstance(update, dict) or not all(isinstance(v, dict) for v in update.values()):
        raise DeploymentError('--update-config must look like {"NAME": {"MERGE": {...}, "RESET": [...]}}')
    for name, change in update.items():
        unknown = set(change) - {"MERGE", "RESET"}
        if unknown:
            raise DeploymentError(f"--update-config for {name}: unknown keys {sorted(unknown)} (MERGE, RESET)")
    return update


def start_order(recipes: dict[str, Recipe]) -> list[Recipe]:
    """Dependencies first; a cycle is an error that names it."""
    order: list[Recipe] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*trail[trail.index(name) :], name]
            raise DeploymentError(f"dependency cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dependency in recipes[name].dependencies:
            if dependency in recipes:
                visit(dependency, [*trail, name])
        state[name] = "done"
        order.append(recipes[name])

    for name in sorted(recipes):
        visit(name, [])
    return order


def resolve(request: DeploymentRequest, current: dict[str, Recipe]) -> list[Recipe]:
    """The components of the new desired state, in start order."""
    unknown_removals = [name for name in request.remove if name not in current and name not in request.merge]
    if unknown_removals:
        raise DeploymentError(f"--remove names components that are not deployed: {', '.join(unknown_removals)}")
    desired = {name: recipe for name, recipe in current.items() if name not in request.remove}
    if request.merge and request.recipe_dir is None:
        raise DeploymentError("--merge needs --recipeDir")
    for name, version in request.merge.items():
        try:
            assert request.recipe_dir is not None
            desired[name] = parse(find(request.recipe_dir, name, version))
        except RecipeError as exc:
            raise DeploymentError(str(exc)) from None
    for name in request.update_config:
        if name not in desired:
            raise DeploymentError(f"--update-config names {name}, which is not in the deployment")
    for recipe in desired.values():
        for dependency, spec in recipe.dependencies.items():
            if dependency in BUILT_IN:
                continue
            if dependency not in desired:
                raise DeploymentError(
                    f"{recipe.name} depends on {dependency}, which is neither in this deployment "
                    "nor a built-in component"
                )
            requirement = str(spec.get("VersionRequirement", "*"))
            try:
                met = satisfies(desired[dependency].version, requirement)
            except RecipeError as exc:
                raise DeploymentError(f"{recipe.name}: dependency {dependency}: {exc}") from None
            if not met:
                raise DeploymentError(
                    f"{recipe.name} needs {dependency} {requirement}; the deployment has {desired[dependency].version}"
                )
    return start_order(desired)


def prepare_artifacts(recipe: Recipe, paths: Paths, artifact_dir: Path | None, docker_check: Any) -> None:
    """The component's artifacts into the core, as a local deployment does (DeploymentService
    .copyRecipesAndArtifacts): the whole `<artifactDir>/<name>/<version>/` tree is copied, listed or not, then
    listed artifacts are checked, unzipped (Unarchive: ZIP) and given the mode their Permission says
    (localgg.permissions); `docker:` images must exist or be pullable."""
    source_dir = artifact_dir / recipe.name / recipe.version if artifact_dir is not None else None
    if source_dir is not None and source_dir.is_dir():
        shutil.copytree(source_dir, paths.artifacts, dirs_exist_ok=True)
    for store in (paths.artifacts, paths.decompressed):  # the component store's folders: 0755, the nucleus's own
        store.mkdir(parents=True, exist_ok=True)
        for folder in (store, *store.parents):
            if folder == paths.root:
                break
            os.chmod(folder, FOLDER, follow_symlinks=False)
    for artifact in recipe.artifacts:
        image = artifact.docker_image
        if image is not None:
            docker_check(image)
            continue
        if source_dir is None:
            raise DeploymentError(f"{recipe.name}: artifact {artifact.uri} needs --artifactDir")
        target = paths.artifacts / artifact.filename
        if not target.is_file():
            raise DeploymentError(
                f"{recipe.name}: artifact {artifact.uri} is missing: no file {source_dir / artifact.filename}"
            )
        if artifact.digest is not None and digest.of_file(target) != artifact.digest:
            # The nucleus downloads it again from its URI (ArtifactDownloader.downloadRequired); a local deployment
            # has nowhere else to take it from.
            raise DeploymentError(
                f"{recipe.name}: artifact {target} does not match the recipe's digest (ARTIFACT_CHECKSUM_MISMATCH)"
            )
        mode = artifact_mode(artifact.read, artifact.execute)
        set_artifact_permission(target, mode)
        if artifact.unarchive:
            destination = paths.decompressed / Path(artifact.filename).stem
            shutil.rmtree(destination, ignore_errors=True)
            try:
                with zipfile.ZipFile(target) as archive:
                    archive.extractall(destination)
            except zipfile.BadZipFile:
                raise DeploymentError(f"{recipe.name}: artifact {target} is not a zip file") from None
            set_artifact_permission(destination, mode)
