"""Local deployments: the greengrass-cli flags, artifacts, configuration updates, and a clear error for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import docker
import pytest

from localgg.core import check_docker_image
from localgg.deployment import DeploymentError, parse_merge, parse_update_config
from localgg.lifecycle import State
from recipeformat import digest
from recipeformat.versions import satisfies
from tests.localgg.harness import CoreThread, write_recipe
from tests.localgg.test_lifecycle import wait_state, work


def refused(gg: CoreThread, *names: str, **kwargs: object) -> str:
    with pytest.raises(DeploymentError) as caught:
        gg.deploy(*names, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_recipe_that_does_not_parse_is_named(gg: CoreThread) -> None:
    gg.recipes.mkdir(parents=True)
    (gg.recipes / "Bad-1.0.0.yaml").write_text("ComponentName: [unclosed")
    message = refused(gg, "Bad")
    assert "Bad-1.0.0.yaml: cannot parse the recipe" in message


def test_an_unknown_component_lists_what_there_is(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Known")
    assert "no recipe for Nope=1.0.0" in (message := refused(gg, "Nope")) and "Known=1.0.0" in message


def test_a_dependency_cycle_is_named(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "A", dependencies={"B": {}})
    write_recipe(gg.recipes, "B", dependencies={"A": {}})
    assert "dependency cycle: A -> B -> A" in refused(gg, "A", "B")


def test_a_missing_dependency_and_an_unmet_version(gg: CoreThread) -> None:
    write_recipe(
        gg.recipes,
        "App",
        dependencies={"Lib": {"VersionRequirement": ">=2.0.0"}, "aws.greengrass.TokenExchangeService": {}},
    )
    assert "depends on Lib, which is neither in this deployment nor a built-in component" in refused(gg, "App")
    write_recipe(gg.recipes, "Lib")
    assert "App needs Lib >=2.0.0; the deployment has 1.0.0" in refused(gg, "App", "Lib")


def test_a_platform_without_a_manifest(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "WinOnly", platform={"os": "windows"})
    assert "WinOnly 1.0.0 has no manifest for this platform (architecture=" in refused(gg, "WinOnly")


def test_a_recipe_is_found_by_its_content_not_its_file_name(gg: CoreThread) -> None:
    """DeploymentService.copyRecipesAndArtifacts stores each recipe by the name and version inside it; GDK
    writes `greengrass-build/recipes/recipe.json`."""
    path = write_recipe(gg.recipes, "Right", lifecycle={"Run": "exec sleep 60"})
    path.rename(gg.recipes / "recipe.json")
    assert "no recipe for Wrong=1.0.0" in refused(gg, "Wrong")
    gg.deploy("Right")
    assert gg.core.recipes["Right"].path == gg.recipes / "recipe.json"


def test_a_missing_artifact_is_named(gg: CoreThread, tmp_path: Path) -> None:
    write_recipe(gg.recipes, "Art", artifacts=[{"URI": "s3://bucket/a/app.zip", "Unarchive": "ZIP"}])
    message = refused(gg, "Art", artifact_dir=tmp_path)
    assert f"no file {tmp_path}/Art/1.0.0/app.zip" in message


def test_zip_artifacts_are_unarchived_for_the_scripts(gg: CoreThread, tmp_path: Path) -> None:
    folder = tmp_path / "Art" / "1.0.0"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "app.zip", "w") as archive:
        archive.writestr("app/hello.sh", "echo hello from the artifact")
    write_recipe(
        gg.recipes,
        "Art",
        artifacts=[{"URI": "s3://bucket/a/app.zip", "Unarchive": "ZIP"}],
        lifecycle={"Run": "sh {artifacts:decompressedPath}/app/app/hello.sh > out"},
    )
    gg.deploy("Art", artifact_dir=tmp_path)
    wait_state(gg, "Art", State.FINISHED)
    assert (work(gg, "Art") / "out").read_text().strip() == "hello from the artifact"


def test_an_artifact_that_does_not_match_its_recipes_digest_is_refused(gg: CoreThread, tmp_path: Path) -> None:
    """A recipe may carry each artifact's digest (the service writes it in; a local recipe usually does not), and
    the nucleus checks the file against it (ArtifactDownloader.downloadRequired: the base64 of its SHA-256)."""
    folder = tmp_path / "Art" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "run.sh").write_text("echo reviewed > out")
    reviewed = digest.of_file(folder / "run.sh")
    artifact = {"URI": "s3://bucket/a/run.sh", "Digest": reviewed, "Algorithm": "SHA-256"}
    write_recipe(gg.recipes, "Art", artifacts=[artifact], lifecycle={"Run": "sh {artifacts:path}/run.sh"})
    (folder / "run.sh").write_text("echo replaced > out")
    assert "does not match the recipe's digest (ARTIFACT_CHECKSUM_MISMATCH)" in refused(
        gg, "Art", artifact_dir=tmp_path
    )
    (folder / "run.sh").write_text("echo reviewed > out")
    gg.deploy("Art", artifact_dir=tmp_path)
    wait_state(gg, "Art", State.FINISHED)
    assert (work(gg, "Art") / "out").read_text().strip() == "reviewed"


def test_update_config_merges_and_resets(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Conf", configuration={"a": 1, "b": {"c": 2, "d": 3}})
    gg.deploy("Conf", update_config={"Conf": {"MERGE": {"a": 10, "b": {"c": 20}}}})
    assert gg.core.config.tree("Conf") == {"a": 10, "b": {"c": 20, "d": 3}}
    gg.deploy("Conf", update_config={"Conf": {"RESET": ["/b/c"]}})
    assert gg.core.config.tree("Conf") == {"a": 10, "b": {"c": 2, "d": 3}}


def test_remove_stops_and_forgets_a_component(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Gone", lifecycle={"Run": "exec sleep 300"})
    gg.deploy("Gone")
    wait_state(gg, "Gone", State.RUNNING)
    gg.deploy(remove=("Gone",))
    assert "Gone" not in gg.core.components and not gg.core.config.has("Gone")
    assert "--remove names components that are not deployed: Gone" in refused(gg, remove=("Gone",))


def test_flag_parsing_errors() -> None:
    with pytest.raises(DeploymentError, match="expected NAME=VERSION"):
        parse_merge(["NoVersion"])
    with pytest.raises(DeploymentError, match="not JSON"):
        parse_update_config("{")
    with pytest.raises(DeploymentError, match="unknown keys"):
        parse_update_config(json.dumps({"A": {"MERG": {}}}))


@pytest.mark.parametrize(
    ("version", "requirement", "expected"),
    [
        ("2.1.0", ">=2.0.0 <3.0.0", True),
        ("3.0.0", ">=2.0.0 <3.0.0", False),
        ("1.2.9", "~1.2.0", True),
        ("1.3.0", "~1.2.0", False),
        ("1.9.0", "^1.2.0", True),
        ("2.0.0", "^1.2.0", False),
        ("1.0.0", "*", True),
    ],
)
def test_version_requirements(version: str, requirement: str, expected: bool) -> None:
    assert satisfies(version, requirement) is expected


def test_cli_refuses_a_bad_deployment_with_exit_code_1(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "localgg",
            "run",
            "--root",
            f"/tmp/gg-bad-{tmp_path.name[-8:]}",
            "--recipe-dir",
            str(tmp_path),
            "--merge",
            "Missing=1.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "deployment refused: no recipe for Missing=1.0.0" in done.stderr


@pytest.mark.docker
def test_docker_artifacts_must_be_present_or_pullable(docker_client: docker.DockerClient, base_image: str) -> None:
    check_docker_image(base_image)
    with pytest.raises(DeploymentError, match="edgeml/absent:never is neither present nor pullable"):
        check_docker_image("edgeml/absent:never")


def test_a_new_version_keeps_the_devices_values_and_adds_new_keys(gg: CoreThread) -> None:
    write_recipe(gg.recipes, "Conf", configuration={"a": 1})
    gg.deploy("Conf", update_config={"Conf": {"MERGE": {"a": 10}}})
    write_recipe(gg.recipes, "Conf", version="1.1.0", configuration={"a": 2, "b": 3})
    gg.deploy("Conf", version="1.1.0")
    assert gg.core.config.tree("Conf") == {"a": 10, "b": 3}
