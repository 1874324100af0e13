"""`make demo`'s job end to end: publisher process and subscriber container under `python -m localgg run`."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from scripts import demo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_demo_with_the_reference_model_prints_the_reference_predictions(
    docker_client: docker.DockerClient, seed: Path
) -> None:
    lines: list[str] = []
    result = demo.run(
        docker_client,
        seed / "xgboost_wine_quality.json",
        messages=3,
        interval=0.5,
        timeout=120,
        progress=lambda message: None,
        on_prediction=lines.append,
    )
    assert result.predictions == [[6.573914, 4.869721]] * 3
    assert lines[0] == "prediction 1: result: [6.573914 4.869721]"
    assert result.core_exit_code == 0
    assert result.containers_left == 0
    subscriber_log = (demo.REPO / "build" / "demo" / "core" / "logs" / f"{demo.SUBSCRIBER}.log").read_text()
    assert "state STOPPING" in subscriber_log and "signal 15: stopping" in subscriber_log
