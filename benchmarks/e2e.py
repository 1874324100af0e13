"""End to end on one machine: a real-SDK publisher -> localgg -> the subscriber container (XGBoost) -> a real-SDK
reader of the results topic, as deployed (the real subscriber recipe, the model component mounted).

`python -m benchmarks.e2e [--count N] [--rate R] [--model M] [--challenger C]`: for the champion alone and with a
challenger scored in its shadow, two runs each:
- latency: N reference messages (the publisher's two records) at R a second, p50/p99 from publish to result;
- throughput: N messages as fast as the core takes them, results a second over the run (the highest sustained
  rate: the subscriber is the narrowest point, and its queue absorbs the rest).
Prints the figures and writes build/benchmarks/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts import engine, image, models, recipes
from scripts.artifacts import sha256
from scripts.product import REPO, Components

NAMES = Components("com.edgeml.bench")  # its own, apart from any stack's or demo's containers
SUBSCRIBER, MODEL = NAMES.subscriber, NAMES.model

OUT = REPO / "build" / "benchmarks" / "e2e.json"
RECORDS = REPO / "components" / "publisher" / "publisher" / "samples.json"
VERSION = "1.0.0"
PEERS = {
    "E2ERead": ("aws.greengrass#SubscribeToTopic", "edgeml/predictions"),
    "E2EPublish": ("aws.greengrass#PublishToTopic", "local/topic"),
}


def stage(folder: Path, tag: str, champion: Path, challenger: Path | None, count: int, rate: float) -> list[str]:
    """Recipes and artifacts for a local deployment of the subscriber, its models and the two peers."""
    recipe_dir, artifact_dir = folder / "recipes", folder / "artifacts" / MODEL / VERSION
    recipe_dir.mkdir(parents=True)
    artifact_dir.mkdir(parents=True)
    held = {}
    for role, path in (("model", champion), ("challenger", challenger)):
        if path is not None:
            shutil.copyfile(path, artifact_dir / f"{role}{path.suffix}")
            held[role] = models.StoredModel(f"s3://local/{role}{path.suffix}", sha256(path))
    version = {"component_version": VERSION}
    rendered = [
        recipes.render_component(
            "subscriber", {**version, "component_name": SUBSCRIBER, **NAMES.subscriber_values(tag)}
        ),
        recipes.render_component(
            "model", {**version, **models.component_values(MODEL, held["model"], held.get("challenger"))}
        ),
    ]
    peer = f"cd {REPO} && exec {sys.executable} -m benchmarks.e2e_peer"
    common = f"--count {count} --ready {folder}/ready"
    runs = {
        "E2ERead": f"{peer} read {common} --out {folder}/read.json",
        "E2EPublish": f"{peer} publish {common} --rate {rate} --records {RECORDS} --go {folder}/go "
        f"--out {folder}/publish.json",
    }
    for name, (operation, topic) in PEERS.items():
        acl = {"aws.greengrass.ipc.pubsub": {f"{name}:1": {"operations": [operation], "resources": [topic]}}}
        rendered.append(
            {
                "RecipeFormatVersion": "2020-01-25",
                "ComponentName": name,
                "ComponentVersion": VERSION,
                "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": acl}},
                "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": runs[name]}}],
            }
        )
    for recipe in rendered:
        (recipe_dir / f"{recipe['ComponentName']}.json").write_text(json.dumps(recipe))
    merges = [arg for recipe in rendered for arg in ("--merge", f"{recipe['ComponentName']}={VERSION}")]
    return ["--recipe-dir", str(recipe_dir), "--artifact-dir", str(folder / "artifacts"), *merges]


def one_run(tag: str, champion: Path, challenger: Path | None, count: int, rate: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="e2e-", dir="/tmp"))  # short: the IPC socket's path is limited
    try:
        args = stage(folder, tag, champion, challenger, count, rate)
        core = subprocess.Popen(
            [sys.executable, "-m", "localgg", "run", "--root", str(folder / "core"), *args],
            stderr=(folder / "localgg.err").open("w"),
            cwd=REPO,
        )
        try:
            log = folder / "core" / "logs" / f"{SUBSCRIBER}.log"
            wait_for(lambda: (folder / "ready").exists() and "subscribed to" in _text(log), core, 120, folder)
            (folder / "go").write_text("go")
            wait_for(lambda: (folder / "read.json").exists() and (folder / "publish.json").exists(), core, 600, folder)
        finally:
            core.send_signal(signal.SIGTERM)
            core.wait(timeout=60)
        sent = json.loads((folder / "publish.json").read_text())["sent_ns"]
        received = json.loads((folder / "read.json").read_text())["received_ns"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    latencies = sorted(r - s for s, r in zip(sent, received, strict=True))
    return {
        "messages": count,
        "rate": rate or "as fast as taken",
        "msg_per_s": round(count / ((received[-1] - sent[0]) / 1e9)),
        "p50_latency_ms": round(latencies[len(latencies) // 2] / 1e6, 3),
        "p99_latency_ms": round(latencies[int(len(latencies) * 0.99)] / 1e6, 3),
    }


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(condition: Callable[[], bool], core: subprocess.Popen[bytes], timeout: float, folder: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if core.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the run did not get there; localgg said:\n{_text(folder / 'localgg.err')[-2000:]}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    seed = REPO.parent / "shared" / "seed"
    parser.add_argument("--count", type=int, default=3000, help="messages per run (default 3000)")
    parser.add_argument("--rate", type=float, default=200.0, help="messages a second in the latency run")
    parser.add_argument("--model", type=Path, default=seed / "xgboost_wine_quality.json")
    parser.add_argument("--challenger", type=Path, default=REPO / "build" / "model" / "model.json")
    args = parser.parse_args()
    if not args.challenger.exists():
        sys.exit(f"{args.challenger} is missing: `make model` first, or pass --challenger")
    tag = image.build(engine.ensure_engine(progress=lambda m: None), progress=lambda m: None).tag
    results = []
    for name, challenger in (("champion alone", None), ("champion + challenger in its shadow", args.challenger)):
        for kind, rate in (("latency", args.rate), ("throughput", 0.0)):
            result = {"case": name, "run": kind, **one_run(tag, args.model, challenger, args.count, rate)}
            results.append(result)
            print(
                f"{name:<38} {kind:<10} {result['msg_per_s']:>6} msg/s  p50 {result['p50_latency_ms']:>8.3f} ms  "
                f"p99 {result['p99_latency_ms']:>8.3f} ms  ({args.count} messages, rate {result['rate']})",
                flush=True,
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{os.cpu_count()} cores, {platform.machine()}"
    OUT.write_text(json.dumps({"machine": machine, "runs": results}, indent=2) + "\n")
    print(f"written to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
