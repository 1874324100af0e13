"""The main job on one machine: the real components under localgg, predictions printed as they arrive.

Builds the subscriber image and the publisher artifact, renders both recipes into a local deployment, runs
`python -m localgg run` with it, follows the subscriber's log, and after `messages` predictions stops the
core with SIGTERM as a device would be stopped, then checks that no container was left behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from scripts import artifacts, image, recipes
from scripts.errors import ToolError
from scripts.platforms import this_machine
from scripts.product import CONTAINER, PUBLISHER, REPO, SUBSCRIBER, follow_predictions
from scripts.progress import Progress

VERSION = "0.1.0"


class DemoError(ToolError):
    pass


@dataclass(frozen=True)
class DemoResult:
    predictions: list[list[float]]
    seconds: float
    core_exit_code: int
    containers_left: int


def stage(workdir: Path, image_tag: str, interval: float) -> list[str]:
    """Recipes and artifacts laid out as `greengrass-cli deployment create` takes them; returns localgg's args."""
    recipe_dir, artifact_dir = workdir / "recipes", workdir / "artifacts"
    for folder in (recipe_dir, artifact_dir):
        folder.mkdir(parents=True, exist_ok=True)
    # localgg runs here: this machine's architecture only.
    zip_path = artifacts.build_publisher_zip(artifact_dir / PUBLISHER / VERSION, this_machine().greengrass)
    rendered = {
        PUBLISHER: recipes.render_component(
            "publisher",
            {"component_name": PUBLISHER, "component_version": VERSION, "artifact_uri": f"s3://local/{zip_path.name}"},
        ),
        SUBSCRIBER: recipes.render_component(
            "subscriber", {"component_name": SUBSCRIBER, "component_version": VERSION, "image": image_tag}
        ),
    }
    for name, recipe in rendered.items():
        (recipe_dir / f"{name}-{VERSION}.json").write_text(json.dumps(recipe, indent=2))
    update = {PUBLISHER: {"MERGE": {"interval": interval}}}
    return [
        "--recipe-dir",
        str(recipe_dir),
        "--artifact-dir",
        str(artifact_dir),
        "--merge",
        f"{SUBSCRIBER}={VERSION}",
        "--merge",
        f"{PUBLISHER}={VERSION}",
        "--update-config",
        json.dumps(update),
    ]


def containers_named(client: docker.DockerClient, name: str) -> int:
    return len(client.containers.list(all=True, filters={"name": f"^/{name}$"}))


def run(
    client: docker.DockerClient,
    model: Path,
    messages: int,
    interval: float,
    timeout: float,
    progress: Progress,
    on_prediction: Progress,
) -> DemoResult:
    workdir = REPO / "build" / "demo"
    built = image.build(client, model, image.DEFAULT_TAG, progress)
    progress(f"image {built.tag}: {built.size_bytes / 1e6:.0f} MB")
    args = stage(workdir, built.tag, interval)
    root = workdir / "core"
    log_path = root / "logs" / f"{SUBSCRIBER}.log"
    log_path.unlink(missing_ok=True)
    progress(f"starting localgg (root {root.relative_to(REPO)}); component logs in {log_path.parent.relative_to(REPO)}")
    started = time.monotonic()
    core = subprocess.Popen(
        [sys.executable, "-m", "localgg", "run", "--root", str(root), *args],
        stdout=subprocess.DEVNULL,
        stderr=(root.parent / "localgg.err").open("w"),
    )

    def core_alive() -> None:
        if core.poll() is not None:
            raise DemoError(f"localgg exited early with {core.returncode}; see {log_path.parent}")

    def shown(line: str) -> None:
        on_prediction(f"prediction {len(seen) + 1}: result: {line}")
        seen.append(line)

    seen: list[str] = []
    try:
        lines = follow_predictions(log_path, messages, timeout, on_prediction=shown, check=core_alive)
        predictions = [[float(value) for value in line.strip("[]").split()] for line in lines]
    finally:
        core.send_signal(signal.SIGTERM)
        try:
            code = core.wait(timeout=60)
        except subprocess.TimeoutExpired:
            core.kill()
            code = core.wait()
    left = containers_named(client, CONTAINER)
    if len(predictions) < messages:
        tail = "\n".join((root.parent / "localgg.err").read_text().splitlines()[-15:])
        raise DemoError(
            f"only {len(predictions)} of {messages} predictions within {timeout:.0f}s; "
            f"see {log_path} and {root / 'logs'}. localgg said:\n{tail}"
        )
    return DemoResult(predictions, time.monotonic() - started, code, left)
