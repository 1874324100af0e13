"""Wall time of `make deploy` against the local cloud: the first one, then a no-change re-run, then `make destroy`.

`python -m benchmarks.local_deploy [--model M]`: starts from no local cloud and no subscriber image (the base
image stays: it is built once per machine), runs the three commands as a user does, and writes the figures to
build/benchmarks/local_deploy.json (make's output goes to local_deploy.log beside it). It refuses to run while a
local cloud is up, since it would tear it down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from scripts.building import engine
from scripts.local import sandbox
from scripts.product import REPO

OUT = REPO / "build" / "benchmarks" / "local_deploy.json"


def timed_make(target: str, model: Path, log: Path) -> float:
    started = time.perf_counter()
    with log.open("a") as output:
        output.write(f"\n===== make {target}\n")
        output.flush()
        done = subprocess.run(
            ["make", target, f"MODEL_PATH={model}"], cwd=REPO, stdout=output, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"make {target} failed ({done.returncode}): see {log}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO.parent / "shared" / "seed" / "xgboost_wine_quality.json")
    args = parser.parse_args()
    if sandbox.find() is not None:
        sys.exit("a local cloud is running: `make destroy` first (this benchmark starts from none)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    log = OUT.with_suffix(".log")
    log.write_text("")
    removed = engine.remove_built_images(engine.ensure_engine(progress=lambda message: None))
    first = timed_make("deploy", args.model.resolve(), log)
    rerun = timed_make("deploy", args.model.resolve(), log)
    destroy = timed_make("destroy", args.model.resolve(), log)
    result = {
        "first_deploy_s": round(first, 1),
        "no_change_rerun_s": round(rerun, 1),
        "destroy_s": round(destroy, 1),
        "subscriber_images_removed_first": removed,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"first make deploy: {result['first_deploy_s']} s   no-change re-run: {result['no_change_rerun_s']} s   "
        f"make destroy: {result['destroy_s']} s   written to {OUT.relative_to(REPO)}"
    )


if __name__ == "__main__":
    main()
