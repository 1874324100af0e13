"""What a new model costs to ship, against what a new image costs: wall time of `make deploy` and the bytes a device
has to fetch, in the local cloud.

`python -m benchmarks.model_redeploy`: in a git worktree of HEAD (its own local cloud under its own build/, so a
local cloud of yours is left alone), runs as a user does
1. `make deploy` with the reference model (the first one: not measured here, see benchmarks.local_deploy),
2. `make deploy MODEL_PATH=<the trained model>`: the model path (one model version, no image),
3. `make deploy` after a one-line change to the subscriber's code: the image path (build, push, pull),
then `make destroy FORCE=1`. Bytes to the device: the model artifact's size on the model path; on the image path,
the layers of the new linux/amd64 image the device's engine did not have (from the image's manifests, read with
ECR's BatchGetImage). Writes build/benchmarks/model_redeploy.json (make's output goes to model_redeploy.log beside
it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from localcloud.info import StackInfo
from scripts.product import REPO

OUT = REPO / "build" / "benchmarks" / "model_redeploy.json"


def make(worktree: Path, log: Path, target: str, **variables: str) -> float:
    """`make TARGET` in the worktree with this checkout's environments, its output appended to `log`; its wall
    time."""
    overrides = {
        "VENV": str(REPO / ".venv"),
        "VENV_STAMP": str(REPO / ".venv" / ".installed"),
        "DEPS": "",  # the worktree's files are newer than the stamp: never reinstall this checkout's environment
        **variables,
    }
    started = time.perf_counter()
    with log.open("a") as output:
        output.write(f"\n===== make {target} {variables}\n")
        output.flush()
        done = subprocess.run(
            ["make", "-C", str(worktree), target, *(f"{k}={v}" for k, v in overrides.items())],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"make {target} failed ({done.returncode}): see {log}")
    return seconds


def ecr_of(worktree: Path) -> Any:
    """ECR of the worktree's local cloud, as its owner."""
    stack = StackInfo.load(worktree / "build" / "local")
    if stack is None:
        sys.exit(f"no local cloud runs in {worktree} after a deploy")
    env = stack.environment()
    return boto3.client(
        "ecr",
        region_name=stack.region,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def layers(ecr: Any, reference: str) -> dict[str, int]:
    """digest -> size of the linux/amd64 image's layers that `reference` (repository@digest of an index) names."""
    repository, digest = reference.split("/", 1)[1].split("@")

    def get(ref: str) -> dict[str, Any]:
        (image,) = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": ref}])["images"]
        document: dict[str, Any] = json.loads(image["imageManifest"])
        return document

    index = get(digest)
    amd64 = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
    return {layer["digest"]: int(layer["size"]) for layer in get(amd64)["layers"]}


def image_of(log: Path) -> str:
    """The subscriber image the last deploy pinned (its `image:` line)."""
    lines = [line for line in log.read_text().splitlines() if line.startswith("image: ")]
    return lines[-1].removeprefix("image: ").strip()


def main() -> None:
    model = REPO / "build" / "model" / "model.json"
    reference = REPO.parent / "shared" / "seed" / "xgboost_wine_quality.json"
    if not model.exists():
        sys.exit(f"{model} is missing: `make model` first (the retrained model this benchmark ships)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    log = OUT.with_suffix(".log")
    log.write_text("")
    worktree = REPO / "build" / "benchmarks" / "worktree"
    subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, capture_output=True, check=False)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(worktree), "HEAD"], cwd=REPO, check=True, capture_output=True
    )
    try:
        make(worktree, log, "deploy", MODEL_PATH=str(reference))
        ecr = ecr_of(worktree)
        before = layers(ecr, image_of(log))
        model_s = make(worktree, log, "deploy", MODEL_PATH=str(model))
        pushed_on_model_path = "image_pushed: True" in log.read_text().rsplit("===== make", 1)[-1]
        app = worktree / "components" / "subscriber" / "subscriber" / "app.py"
        app.write_text(app.read_text() + "\n# a release\n")
        image_s = make(worktree, log, "deploy", MODEL_PATH=str(model))
        after = layers(ecr, image_of(log))
        make(worktree, log, "destroy", FORCE="1")
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, capture_output=True, check=False
        )
    result = {
        "model_path_s": round(model_s, 1),
        "model_path_image_pushed": pushed_on_model_path,
        "model_path_bytes_to_device": model.stat().st_size,
        "image_path_s": round(image_s, 1),
        "image_path_bytes_to_device": sum(size for digest, size in after.items() if digest not in before),
        "image_compressed_bytes": sum(after.values()),
        "image_path_new_layers": len(set(after) - set(before)),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"model path: {result['model_path_s']} s, {result['model_path_bytes_to_device'] / 1e6:.2f} MB to the device, "
        f"image pushed: {pushed_on_model_path}   image path: {result['image_path_s']} s, "
        f"{result['image_path_bytes_to_device'] / 1e3:.1f} kB of new layers to the device   written to "
        f"{OUT.relative_to(REPO)}"
    )


if __name__ == "__main__":
    main()
