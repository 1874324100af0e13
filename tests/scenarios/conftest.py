"""The end-to-end scenarios: `make` as a user runs it, against the local cloud, on a copy of the checkout (so a test
can edit a recipe as a user would, and never touches the developer's own local cloud or containers).

Nothing is mocked: Terraform with the real AWS provider against moto, the image through a real registry, the
greengrassv2 control plane over HTTP, and localgg as the core device running the real components in Docker. Each
scenario is a file of its own, so that `make test`'s workers can run two of them at once (each has a stack of its own:
tests/support/make.py), and each test starts from no local cloud.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import Run
from tests.support.make import Make, stack_in_a_copy


@pytest.fixture(scope="module")
def make(
    terraform: Run, seed: Path, docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Make]:
    yield from stack_in_a_copy(tmp_path_factory.mktemp("checkout"), seed / "xgboost_wine_quality.json")
