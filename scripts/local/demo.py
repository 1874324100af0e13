"""The main job on one machine: the real components under localgg, predictions printed as they arrive.

Builds the subscriber image and the publisher artifact, stages the model as the model component's artifact,
renders the three recipes into a local deployment, runs
`python -m localgg run` with it, follows the subscriber's log, and after `messages` predictions stops the
core with SIGTERM as a device would be stopped, then checks that no container was left behind.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from scripts.building import image
from scripts.errors import ToolError
from scripts.platforms import this_machine
from scripts.product import COMPONENTS, DEMO, REPO, Components, Made, follow_predictions
from scripts.progress import Progress
from scripts.publishing import artifacts, modelfile, models, recipes
from scripts.publishing.artifacts import sha256
from scripts.publishing.models import StoredModel

VERSION = "1.0.0"  # the subscriber takes model versions 1.x


class DemoError(ToolError):
    pass


@dataclass(frozen=True)
class DemoResult:
    predictions: list[list[float]]
    seconds: float
    core_exit_code: int
    containers_left: int

    def record(self) -> dict[str, Any]:
        shown = {"predictions": self.predictions, "messages": len(self.predictions), "seconds": round(self.seconds, 1)}
        return {**shown, "containers_left": self.containers_left}


def stage(workdir: Path, image_tag: str, model: Path, interval: float, names: Components = DEMO) -> list[str]:
    """Recipes and artifacts laid out as `greengrass-cli deployment create` takes them; returns localgg's args."""
    recipe_dir, artifact_dir = workdir / "recipes", workdir / "artifacts"
    for folder in (recipe_dir, artifact_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    # localgg runs here: this machine's architecture only.
    architecture = this_machine().greengrass
    zip_path = artifacts.build_publisher_zip(artifact_dir / names.publisher / VERSION, architecture)
    model_file = artifact_dir / names.model / VERSION / f"model{model.suffix}"
    model_file.parent.mkdir(parents=True)
    shutil.copyfile(model, model_file)
    stored = StoredModel(f"s3://local/{model_file.name}", sha256(model_file))
    made = Made(
        image_tag, models.component_values(names.model, stored, None), {architecture: f"s3://local/{zip_path.name}"}
    )
    args = ["--recipe-dir", str(recipe_dir), "--artifact-dir", str(artifact_dir)]
    for component in COMPONENTS:
        name = names.of(component)
        recipe = recipes.render_release(component, names, made, VERSION)
        (recipe_dir / f"{name}-{VERSION}.json").write_text(json.dumps(recipe, indent=2))
        args += ["--merge", f"{name}={VERSION}"]
    return [*args, "--update-config", json.dumps({names.publisher: {"MERGE": {"interval": interval}}})]


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
    names: Components = DEMO,
) -> DemoResult:
    """`names`: the components' namespace (a test takes one of its own, so as never to meet a user's demo)."""
    workdir = REPO / "build" / "demo"
    scored = modelfile.check(model)
    progress(f"model {model}: scores the publisher's records ({len(scored)} predictions)")
    built = image.build(client, image.DEFAULT_TAG, progress)
    progress(f"image {built.tag}: {built.size_bytes / 1e6:.0f} MB")
    args = stage(workdir, built.tag, model, interval, names)
    root = workdir / "core"
    log_path = root / "logs" / f"{names.subscriber}.log"
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
    left = containers_named(client, names.subscriber)
    if len(predictions) < messages:
        tail = "\n".join((root.parent / "localgg.err").read_text().splitlines()[-15:])
        raise DemoError(
            f"only {len(predictions)} of {messages} predictions within {timeout:.0f}s; "
            f"see {log_path} and {root / 'logs'}. localgg said:\n{tail}"
        )
    return DemoResult(predictions, time.monotonic() - started, code, left)
