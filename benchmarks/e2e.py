"""End to end on one machine: a real-SDK publisher -> localgg -> the subscriber container (XGBoost) -> a real-SDK
reader of the results topic, as deployed (the real subscriber recipe, the model component mounted).

`python -m benchmarks.e2e [--count N] [--rate R] [--model M] [--challenger C] [--flood-seconds S] [--repeat K]`: for
the champion alone and with a challenger scored in its shadow, two runs each, each repeated K times (3) and recorded
as its median run (by p50, or by msg/s), with every repeat's figure beside it (runs of seconds vary by ±20% here):
- latency: N reference messages (the publisher's two records) at R a second, each published synchronously,
  p50/p99 from publish to result;
- throughput: N messages published as fast as the core takes them (256 unanswered at most), results a second over
  the run (the highest sustained rate: the subscriber is the narrowest point; past its queue it drops, counted);
then, champion alone, a flood: 3x the sustained rate for S seconds (60), with the subscriber's peak memory and every
message answered, dropped (counted by the subscriber) or lost (neither). The single-hop IPC rate it rides on
(benchmarks.ipc, 1 KiB pipelined) is measured in the same run, and so is one hop at the latency run's pace (the same
peers and message, the publisher straight to the reader: `paced_hop_p50_ms`, the floor under the latency run's p50
is two of those and the scoring). Prints the figures and writes build/benchmarks/e2e.json.
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

from benchmarks import ipc
from benchmarks.e2e_peer import ERRORS, INPUT, RESULTS
from localcloud import broker
from scripts.building import engine, image
from scripts.product import REPO, Components
from scripts.publishing import modelfile, models, recipes
from scripts.publishing.artifacts import sha256

# Its own names, apart from any stack's or demo's containers; its core has no AWS IoT Core: telemetry is off but in
# the telemetry cost runs, which give the core a broker and the subscriber a window a second.
NAMES = Components("com.edgeml.bench", telemetry_prefix="")
TELEMETRY = Components("com.edgeml.bench", telemetry_prefix="edgeml", telemetry_window=1)
SUBSCRIBER, MODEL = NAMES.subscriber, NAMES.model

OUT = REPO / "build" / "benchmarks" / "e2e.json"
RECORDS = REPO / "components" / "publisher" / "publisher" / "samples.json"
VERSION = "1.0.0"
PEERS = {
    "E2ERead": ("aws.greengrass#SubscribeToTopic", [RESULTS, ERRORS]),
    "E2EPublish": ("aws.greengrass#PublishToTopic", [INPUT, RESULTS]),  # RESULTS: the paced hop, to the reader
}
PIPELINED = 256  # publishes in flight in the throughput and flood runs, as benchmarks.ipc's pipelined case


def stage(
    folder: Path,
    tag: str,
    champion: Path,
    challenger: Path | None,
    count: int,
    rate: float,
    inflight: int,
    topic: str = INPUT,
    names: Components = NAMES,
) -> list[str]:
    """Recipes and artifacts for a local deployment of the subscriber, its models (with the champion's profile,
    if `make model` wrote one for it) and the two peers."""
    recipe_dir, artifact_dir = folder / "recipes", folder / "artifacts" / MODEL / VERSION
    recipe_dir.mkdir(parents=True)
    artifact_dir.mkdir(parents=True)
    held = {}
    beside = champion.parent / modelfile.PROFILE
    mine = beside.is_file() and json.loads(beside.read_text()).get("model_sha256") == sha256(champion)
    profile = beside if mine else None
    for role, path in (("model", champion), ("challenger", challenger), ("profile", profile)):
        if path is not None:
            shutil.copyfile(path, artifact_dir / f"{role}{path.suffix}")
            held[role] = models.StoredModel(f"s3://local/{role}{path.suffix}", sha256(path))
    version = {"component_version": VERSION}
    rendered = [
        recipes.render_component(
            "subscriber", {**version, "component_name": SUBSCRIBER, **names.subscriber_values(tag)}
        ),
        recipes.render_component(
            "model",
            {
                **version,
                **models.component_values(MODEL, held["model"], held.get("challenger"), held.get("profile")),
            },
        ),
    ]
    peer = f"cd {REPO} && exec {sys.executable} -m benchmarks.e2e_peer"
    common = f"--count {count} --ready {folder}/ready"
    runs = {
        "E2ERead": f"{peer} read {common} --out {folder}/read.json",
        "E2EPublish": f"{peer} publish {common} --rate {rate} --inflight {inflight} --records {RECORDS} "
        f"--go {folder}/go --out {folder}/publish.json --topic {topic}",
    }
    for name, (operation, topics) in PEERS.items():
        acl = {"aws.greengrass.ipc.pubsub": {f"{name}:1": {"operations": [operation], "resources": topics}}}
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


def one_run(
    tag: str,
    champion: Path,
    challenger: Path | None,
    count: int,
    rate: float,
    inflight: int = 1,
    topic: str = INPUT,
    mqtt: str = "",
) -> dict[str, Any]:
    """`mqtt`: a broker's HOST:PORT for the core's AWS IoT Core, and telemetry on (a window a second)."""
    folder = Path(tempfile.mkdtemp(prefix="e2e-", dir="/tmp"))  # short: the IPC socket's path is limited
    try:
        args = stage(folder, tag, champion, challenger, count, rate, inflight, topic, TELEMETRY if mqtt else NAMES)
        if mqtt:
            args += ["--mqtt-broker", mqtt]
        core = subprocess.Popen(
            [sys.executable, "-m", "localgg", "run", "--root", str(folder / "core"), *args],
            stderr=(folder / "localgg.err").open("w"),
            cwd=REPO,
        )
        try:
            log = folder / "core" / "logs" / f"{SUBSCRIBER}.log"
            wait_for(lambda: (folder / "ready").exists() and "subscribed to" in _text(log), core, 120, folder)
            (folder / "go").write_text("go")
            wait_for(lambda: (folder / "read.json").exists() and (folder / "publish.json").exists(), core, 900, folder)
            peak_rss_mb = subscriber_peak_rss_mb()
        finally:
            core.send_signal(signal.SIGTERM)
            core.wait(timeout=60)
        sent = json.loads((folder / "publish.json").read_text())["sent_ns"]
        read = json.loads((folder / "read.json").read_text())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    received, dropped = read["received_ns"], read["dropped"]
    # Without drops the i-th result answers the i-th message; with them, which answers which is not known here.
    latencies = sorted(r - s for s, r in zip(sent, received, strict=True)) if not dropped else []
    return {
        "messages": count,
        "rate": rate or "as fast as taken",
        "msg_per_s": round(len(received) / ((received[-1] - sent[0]) / 1e9)),
        "p50_latency_ms": round(latencies[len(latencies) // 2] / 1e6, 3) if latencies else None,
        "p99_latency_ms": round(latencies[int(len(latencies) * 0.99)] / 1e6, 3) if latencies else None,
        "offered_msg_per_s": round(len(sent) / ((sent[-1] - sent[0]) / 1e9)) if len(sent) > 1 else None,
        "answered": len(received),
        "dropped": dropped,
        "lost": count - len(received) - dropped,
        "peak_rss_mb": peak_rss_mb,
    }


def subscriber_peak_rss_mb() -> float:
    """The subscriber container's largest process at its peak (VmHWM), read from this machine's /proc."""
    client = engine.ensure_engine(progress=lambda m: None)
    top = client.containers.get(SUBSCRIBER).top()
    pids = [row[top["Titles"].index("PID")] for row in top["Processes"]]
    peaks = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks += [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
    return round(max(peaks) / 1024, 1)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(condition: Callable[[], bool], core: subprocess.Popen[bytes], timeout: float, folder: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if core.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the run did not get there; localgg said:\n{_text(folder / 'localgg.err')[-2000:]}")
        time.sleep(0.02)


def ipc_pipelined_msg_per_s(repeat: int = 3) -> int:
    """The single localgg hop this pipeline rides on, as benchmarks.ipc measures it: 1 KiB, 256 in flight (median)."""
    rates = sorted(ipc.one_run(20_000, 1024, PIPELINED)["msg_per_s"] for _ in range(repeat))
    return int(rates[len(rates) // 2])


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose headline figure is the median: p50 for a paced run, msg/s for one as fast as taken; with the
    figure of every repeat, in the order they ran."""
    key = "p50_latency_ms" if all(run["p50_latency_ms"] is not None for run in runs) else "msg_per_s"
    chosen = sorted(runs, key=lambda run: float(run[key]))[len(runs) // 2]
    return {**chosen, f"{key}_of_repeats": [run[key] for run in runs]}


def show(result: dict[str, Any]) -> None:
    def ms(value: float | None) -> str:
        return f"{value:>8.3f} ms" if value is not None else "       - ms"

    print(
        f"{result['case']:<38} {result['run']:<10} {result['msg_per_s']:>6} msg/s  p50 {ms(result['p50_latency_ms'])}  "
        f"p99 {ms(result['p99_latency_ms'])}  answered {result['answered']} dropped {result['dropped']} "
        f"lost {result['lost']}  peak {result['peak_rss_mb']} MB  ({result['messages']} messages, rate "
        f"{result['rate']})",
        flush=True,
    )


def telemetry_cost(tag: str, count: int, repeat: int) -> dict[str, Any]:
    """The trained model alone (its profile shipped: every record binned), throughput with telemetry off and on (a
    window a second through the core's PublishToIoTCore to a broker), interleaved, the median of each."""
    model = REPO / "build" / "model" / "model.json"
    folder = Path(tempfile.mkdtemp(prefix="e2e-mqtt-", dir="/tmp"))
    mqtt = broker.start(folder)
    try:
        address = f"{mqtt.address[0]}:{mqtt.address[1]}"
        off, on = [], []
        for _ in range(repeat):
            off.append(one_run(tag, model, None, count, 0.0, PIPELINED))
            on.append(one_run(tag, model, None, count, 0.0, PIPELINED, mqtt=address))
    finally:
        mqtt.stop()
        shutil.rmtree(folder, ignore_errors=True)
    off_rate, on_rate = median_run(off)["msg_per_s"], median_run(on)["msg_per_s"]
    figures = {
        "model": str(model.relative_to(REPO)),
        "off_msg_per_s": off_rate,
        "on_msg_per_s": on_rate,
        "on_share_of_off": round(on_rate / off_rate, 3),
        "off_of_repeats": [run["msg_per_s"] for run in off],
        "on_of_repeats": [run["msg_per_s"] for run in on],
    }
    print(
        f"telemetry cost, trained model alone: off {off_rate} msg/s, on {on_rate} msg/s "
        f"({figures['on_share_of_off']:.3f} of off)",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    seed = REPO.parent / "shared" / "seed"
    parser.add_argument("--count", type=int, default=3000, help="messages per run (default 3000)")
    parser.add_argument("--rate", type=float, default=200.0, help="messages a second in the latency run")
    parser.add_argument("--model", type=Path, default=seed / "xgboost_wine_quality.json")
    parser.add_argument("--challenger", type=Path, default=REPO / "build" / "model" / "model.json")
    parser.add_argument("--flood-seconds", type=float, default=60.0, help="how long the flood lasts (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case, the median kept (default 3)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.challenger.exists():
        sys.exit(f"{args.challenger} is missing: `make model` first, or pass --challenger")
    tag = image.build(engine.ensure_engine(progress=lambda m: None), progress=lambda m: None).tag
    hop = ipc_pipelined_msg_per_s()
    print(f"single localgg hop, 1 KiB pipelined: {hop} msg/s", flush=True)
    # The floor under the latency run's p50: the same peers and message, at the same pace, straight to the reader.
    paced = median_run([one_run(tag, args.model, None, args.count, args.rate, 1, RESULTS) for _ in range(args.repeat)])
    print(f"single localgg hop, paced at {args.rate:.0f} msg/s: p50 {paced['p50_latency_ms']} ms", flush=True)
    results = []
    for name, challenger in (("champion alone", None), ("champion + challenger in its shadow", args.challenger)):
        for kind, rate, inflight in (("latency", args.rate, 1), ("throughput", 0.0, PIPELINED)):
            repeats = [one_run(tag, args.model, challenger, args.count, rate, inflight) for _ in range(args.repeat)]
            result = {"case": name, "run": kind, **median_run(repeats)}
            results.append(result)
            show(result)
    document_telemetry = telemetry_cost(tag, args.count, args.repeat)
    sustained = results[1]["msg_per_s"]  # the champion alone's throughput
    rate = 3 * sustained
    flood = one_run(tag, args.model, None, int(rate * args.flood_seconds), rate, PIPELINED)
    results.append({"case": "champion alone", "run": "flood", **flood})
    show(results[-1])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{os.cpu_count()} cores, {platform.machine()}"
    document = {
        "machine": machine,
        "ipc_pipelined_msg_per_s": hop,
        "paced_hop_p50_ms": paced["p50_latency_ms"],
        "paced_hop_p99_ms": paced["p99_latency_ms"],
        "sustained_share_of_ipc": round(sustained / hop, 3),
        "telemetry": document_telemetry,
        "runs": results,
    }
    OUT.write_text(json.dumps(document, indent=2) + "\n")
    print(f"champion alone sustains {sustained} msg/s, {sustained / hop:.2f} of the single hop")
    print(f"written to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
