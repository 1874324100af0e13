"""Both recipe templates render to publishable recipes, and each known mistake is refused by name."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from localgg.recipe import parse
from recipeformat.document import RecipeError
from recipeformat.platform import this_device
from scripts.publishing import models, recipes
from tests.localgg.harness import CoreThread
from tests.support.eventually import eventually

VALUES: dict[str, dict[str, recipes.Value]] = {
    "publisher": {
        "component_name": "com.edgeml.Publisher",
        "component_version": "1.2.3",
        "artifact_uri": "s3://bucket/artifacts/abc/publisher.zip",
    },
    "subscriber": {
        "component_name": "com.edgeml.Subscriber",
        "component_version": "1.2.3",
        "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/edgeml@sha256:" + "a" * 64,
        "model_component": "com.edgeml.Model",
        "docker_network": "none",
        "telemetry_prefix": "fleet-a",
        "telemetry_window_seconds": 60,
    },
    "model": {
        "component_version": "1.2.3",
        **models.component_values(
            "com.edgeml.Model",
            models.StoredModel("s3://bucket/artifacts/com.edgeml.Model/abc/model.json", "b" * 64),
            models.StoredModel("s3://bucket/artifacts/com.edgeml.Model/def/challenger.json", "c" * 64),
        ),
    },
}


@pytest.fixture(params=sorted(VALUES))
def rendered(request: pytest.FixtureRequest) -> dict[str, Any]:
    return recipes.render_component(request.param, VALUES[request.param])


def subscriber() -> dict[str, Any]:
    return recipes.render_component("subscriber", VALUES["subscriber"])


def run_script(recipe: dict[str, Any]) -> str:
    script: str = recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"]
    return script


def set_run(recipe: dict[str, Any], script: str) -> None:
    recipe["Manifests"][0]["Lifecycle"]["Run"]["Script"] = script


def test_templates_render_without_problems(rendered: dict[str, Any]) -> None:
    assert recipes.problems(rendered) == []
    assert rendered["ComponentVersion"] == "1.2.3"
    assert "{{" not in recipes.to_json(rendered)


def test_greengrass_variables_are_left_for_the_nucleus() -> None:
    setenv = subscriber()["Manifests"][0]["Lifecycle"]["Setenv"]
    assert setenv["EDGEML_MODEL_DIR"] == "{com.edgeml.Model:artifacts:path}"
    assert (
        setenv["EDGEML_DOCKER_NETWORK"] == "none"
    )  # a deploy-time value: not configuration the component could change
    publisher = recipes.render_component("publisher", VALUES["publisher"])
    assert (
        publisher["Manifests"][0]["Lifecycle"]["Setenv"]["EDGEML_PUBLISHER"] == "{artifacts:decompressedPath}/publisher"
    )


def test_access_is_limited_to_the_topics_each_component_uses() -> None:
    policies = subscriber()["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    granted = {
        (op, res)
        for policy in policies["aws.greengrass.ipc.pubsub"].values()
        for op in policy["operations"]
        for res in policy["resources"]
    }
    assert granted == {
        ("aws.greengrass#SubscribeToTopic", "local/topic"),
        ("aws.greengrass#PublishToTopic", "edgeml/predictions"),
        ("aws.greengrass#PublishToTopic", "edgeml/errors"),
        ("aws.greengrass#PublishToTopic", "edgeml/shadow"),  # a challenger's records, when there is one
    }
    # To AWS IoT Core: only its telemetry windows, on the stack's prefix (Terraform's telemetry_topic_prefix), any
    # thing's name as a single level (the recipe is the group's; each device's IoT policy admits only its own).
    proxied = {
        (op, res)
        for policy in policies["aws.greengrass.ipc.mqttproxy"].values()
        for op in policy["operations"]
        for res in policy["resources"]
    }
    assert proxied == {("aws.greengrass#PublishToIoTCore", "fleet-a/+/telemetry")}
    assert set(policies) == {"aws.greengrass.ipc.pubsub", "aws.greengrass.ipc.mqttproxy"}
    configuration = subscriber()["ComponentConfiguration"]["DefaultConfiguration"]
    assert configuration["telemetryTopicPrefix"] == "fleet-a"


def test_a_missing_placeholder_value_is_named() -> None:
    with pytest.raises(recipes.RecipeError, match=r"placeholder\(s\): image"):
        recipes.render_component("subscriber", {k: v for k, v in VALUES["subscriber"].items() if k != "image"})


def mutated(change: str) -> dict[str, Any]:
    recipe = copy.deepcopy(subscriber())
    lifecycle = recipe["Manifests"][0]["Lifecycle"]
    if change == "flag_after_image":
        set_run(recipe, run_script(recipe).replace('"$EDGEML_IMAGE"', '"$EDGEML_IMAGE" --network=host'))
    elif change == "hard_coded_socket":
        set_run(
            recipe,
            run_script(recipe).replace(
                '"$AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT:$AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"',
                "/greengrass/v2/ipc.socket:/greengrass/v2/ipc.socket",
            ),
        )
    elif change == "no_svcuid":
        set_run(recipe, run_script(recipe).replace("-e SVCUID", ""))
    elif change == "no_dependencies":
        del recipe["ComponentDependencies"]
    elif change == "wildcard_access":
        policies = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
        next(iter(policies["aws.greengrass.ipc.pubsub"].values()))["resources"] = ["*"]
    elif change == "pip_install":
        lifecycle["Install"] = "pip install xgboost"
    elif change == "too_big":
        recipe["ComponentDescription"] = "x" * recipes.MAX_RECIPE_BYTES
    elif change == "bad_version":
        recipe["ComponentVersion"] = "1.0"
    elif change == "no_shutdown":
        del lifecycle["Shutdown"]
    elif change == "no_rm":
        set_run(recipe, run_script(recipe).replace("--rm ", ""))
    elif change == "no_name":
        set_run(recipe, run_script(recipe).replace('--name "$EDGEML_CONTAINER"', ""))
    elif change == "configuration_in_shell":
        set_run(recipe, run_script(recipe).replace("-e MODEL_PATH", "-e MODEL_PATH={configuration:/inputTopic}"))
    elif change == "docker_unprivileged":
        lifecycle["Shutdown"] = lifecycle["Shutdown"]["Script"]
    elif change in ("privileged", "host_network", "host_pid", "host_mount", "mount_flag"):
        flag = {
            "privileged": "--privileged",
            "host_network": "--network host",
            "host_pid": "--pid=host",
            "host_mount": "-v /etc:/etc",
            "mount_flag": "--mount type=bind,source=/,target=/host",
        }[change]
        set_run(recipe, run_script(recipe).replace("--read-only", f"{flag} --read-only"))
    return recipe


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "flag_after_image",
            "docker flags after the image go to the container, not to Docker: --network=host",
        ),
        ("hard_coded_socket", "the IPC socket path is hard-coded"),
        ("no_svcuid", "must pass -e SVCUID"),
        ("no_dependencies", "does not depend on aws.greengrass.DockerApplicationManager"),
        ("wildcard_access", "resources must name topics, not '*'"),
        ("pip_install", "`pip install` on the device"),
        ("too_big", "Greengrass takes at most 16000"),
        ("bad_version", "'1.0' is not a semantic version"),
        ("no_shutdown", "its Shutdown does not stop it"),
        ("no_rm", "without --rm"),
        ("no_name", "needs --name"),
        ("configuration_in_shell", "a configuration value is pasted into the shell script"),
        ("docker_unprivileged", "Lifecycle.Shutdown calls docker as the component's user"),
        ("privileged", "`docker run --privileged` gives the container the whole device"),
        ("host_network", "`--network host` is written into the script"),
        ("host_pid", "`docker run --pid host` shares the device's pid namespace"),
        ("host_mount", "`docker run -v /etc:/etc` mounts a host path"),
        ("mount_flag", "`docker run --mount type=bind,source=/,target=/host` mounts a host path"),
    ],
)
def test_each_known_mistake_is_refused(change: str, message: str) -> None:
    with pytest.raises(recipes.RecipeError) as caught:
        recipes.check(mutated(change))
    assert message in str(caught.value)


def test_a_hostile_configuration_value_stays_data_under_the_core(tmp_path: Path) -> None:
    """The nucleus interpolates `{configuration:...}` into lifecycle text before `sh -c` runs it (KernelConfigResolver),
    so a value pasted into a script would be code. The model component's file name reaches the subscriber's scripts
    through Setenv (MODEL_PATH) and `docker run -e MODEL_PATH` passes it by name: under localgg, a file name of
    `x"; touch <file>; echo "` reaches the steps as data, and the file is never made."""
    marker = tmp_path / "injected"
    recipe = subscriber()
    model = recipes.render_component("model", VALUES["model"])
    model["ComponentConfiguration"]["DefaultConfiguration"]["modelFile"] = f'x"; touch {marker}; echo "'
    artifacts = tmp_path / "artifacts"
    (artifacts / model["ComponentName"] / "1.2.3").mkdir(parents=True)
    for artifact in model["Manifests"][0]["Artifacts"]:
        (artifacts / model["ComponentName"] / "1.2.3" / artifact["URI"].rsplit("/", 1)[1]).write_text("{}")
    gg = CoreThread(docker_check=lambda image: None)
    try:
        (gg.recipes).mkdir(parents=True, exist_ok=True)
        (gg.recipes / "subscriber.json").write_text(json.dumps(recipe))
        (gg.recipes / "model.json").write_text(json.dumps(model))
        gg.deploy(recipe["ComponentName"], model["ComponentName"], version="1.2.3", artifact_dir=artifacts)
        log = gg.root / "core" / "logs" / f"{recipe['ComponentName']}.log"
        # The image is not there: Install fails.
        eventually(lambda: "Install exited with" in (log.read_text() if log.exists() else ""), 60, what="Install ran")
    finally:
        gg.close()
    assert not marker.exists()


def test_the_publisher_has_one_manifest_per_architecture_and_a_core_takes_its_own(tmp_path: Path) -> None:
    """Greengrass picks the manifest whose Platform fits the core (recipe reference, Platform.architecture, with
    the nucleus's names amd64 and aarch64): each core gets its architecture's zip, and a core of an architecture
    the recipe does not list fails the deployment naming its platform."""
    uris = {"amd64": "s3://b/artifacts/pub/1/publisher.zip", "aarch64": "s3://b/artifacts/pub/2/publisher.zip"}
    recipe = recipes.render_component(
        "publisher",
        {"component_name": "com.example.Pub", "component_version": "1.0.0"},
        {arch: {"artifact_uri": uri} for arch, uri in uris.items()},
    )
    assert [(m["Platform"], m["Artifacts"][0]["URI"]) for m in recipe["Manifests"]] == [
        ({"os": "linux", "architecture": arch}, uri) for arch, uri in uris.items()
    ]
    path = tmp_path / "recipe.json"
    path.write_text(recipes.to_json(recipe))
    for arch, uri in uris.items():
        assert [a.uri for a in parse(path, {"os": "linux", "architecture": arch}).artifacts] == [uri]
    with pytest.raises(RecipeError, match="arm"):
        parse(path, {"os": "linux", "architecture": "arm"})


def test_the_subscriber_claims_only_the_architecture_its_image_was_built_for() -> None:
    assert [m["Platform"] for m in subscriber()["Manifests"]] == [
        {"os": "linux", "architecture": this_device()["architecture"]}
    ]
