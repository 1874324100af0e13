"""`make demo`'s job end to end: publisher process and subscriber container under `python -m localgg run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from scripts import product
from tests.support import checkout

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_demo_with_the_reference_model_prints_the_reference_predictions(
    docker_client: docker.DockerClient, seed: Path, tmp_path: Path
) -> None:
    """Through the command line with `--json`, as a program runs it: stdout is one JSON document, the predictions
    as they arrive go to stderr. In a copy of the checkout and a namespace of its own: a user's own `make demo` (its
    build/demo folder, its container) is never touched."""
    copy = checkout.checkout_copy(tmp_path)
    names = checkout.components(checkout.name_prefix())
    model = str(seed / "xgboost_wine_quality.json")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts",
            "demo",
            "--json",
            "--model",
            model,
            "--messages",
            "3",
            "--interval",
            "0.5",
            "--namespace",
            names.namespace,
        ],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["predictions"] == [[6.573914, 4.869721]] * 3
    assert "prediction 1: result: [6.573914 4.869721]" in done.stderr.splitlines()
    assert result["containers_left"] == 0
    subscriber_log = (copy / "build" / "demo" / "core" / "logs" / f"{names.subscriber}.log").read_text()
    assert "state STOPPING" in subscriber_log and "signal 15: stopping" in subscriber_log
    assert not (product.REPO / "build" / "demo" / "core" / "logs" / f"{names.subscriber}.log").exists()
