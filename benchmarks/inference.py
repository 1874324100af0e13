"""Inference latency, ours vs the reference's way, in one process on the same message.

`python -m benchmarks.inference --model M --samples S [--iterations N]`: prints p50/p99 per way and the
speed-up, and writes them to build/benchmarks/inference.json.
The reference's way: `pandas.read_json` on the body, then `Booster.predict(DMatrix(df))`.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb
from subscriber.inference import Model, handler

OUT = Path("build/benchmarks/inference.json")


def measure(call: Callable[[], Any], iterations: int) -> dict[str, float]:
    for _ in range(min(200, iterations)):  # warm caches and lazy initialisation
        call()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2] * 1e3, 4),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1e3, 4),
        "mean_ms": round(statistics.fmean(times) * 1e3, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()

    body = args.samples.read_text()
    event = {"body": body, "isBase64Encoded": False}
    model = Model(args.model)
    reference = xgb.Booster(model_file=str(args.model))

    def ours() -> Any:
        return handler(event, None, model)["body"]

    def reference_way() -> Any:
        frame = pd.read_json(io.StringIO(body))
        return reference.predict(xgb.DMatrix(frame)).tolist()

    assert ours() == [round(v, 6) for v in reference_way()], "both ways must agree before they are timed"
    figures: dict[str, Any] = {
        "ours": measure(ours, args.iterations),
        "reference": measure(reference_way, args.iterations // 5),
    }
    figures["speedup_p50"] = round(figures["reference"]["p50_ms"] / figures["ours"]["p50_ms"], 1)
    result = {
        "message": "2 records (the reference samples)",
        "model": str(args.model),
        "python": platform.python_version(),
        "xgboost": xgb.__version__,
        "figures": figures,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ours:      p50 {figures['ours']['p50_ms']:.4f} ms  p99 {figures['ours']['p99_ms']:.4f} ms")
    print(f"reference: p50 {figures['reference']['p50_ms']:.4f} ms  p99 {figures['reference']['p99_ms']:.4f} ms")
    print(f"speed-up at p50: {figures['speedup_p50']}x   (written to {OUT})")


if __name__ == "__main__":
    main()
