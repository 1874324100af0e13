"""Shared fixtures: the repository, the seed data beside it, and a Docker engine."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from hypothesis import HealthCheck, settings
from subscriber.inference import Model

from scripts import isolation
from scripts.building import engine, machine
from tests.localgg.harness import UNJUDGED, CoreThread
from tests.support import images

# Every property test: example counts as each test sets them, but no wall-clock judgement of the generation or the
# run, which a loaded 2-core machine cannot keep (hypothesis' too_slow health check failed there once). A failure
# prints its example and the blob that replays it (`@reproduce_failure`).
# - "edgeml" (the default, `make test` and CI): derandomized, so a run is the same run every time and a failure
#   is never luck; what it finds is found on the next run too.
# - "wide" (`make fuzz`): a new seed each run and ten times the examples, to find what the fixed draw does not.
settings.register_profile(
    "edgeml", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True, derandomize=True
)
settings.register_profile("wide", settings.get_profile("edgeml"), derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "edgeml"))

REPO = Path(__file__).resolve().parent.parent

# The longest files first: `make test`'s workers take files in this order (--no-loadscope-reorder), and a scenario of
# seven minutes started last would leave the other workers idle for most of it. The journey and the faults are one
# file each (a stack each, built up step by step): they start at once, on two workers, the rest shares the third.
LONGEST_FIRST = ("scenarios/test_user_journey.py", "faults", "scenarios")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        places = [REPO / "tests" / name for name in LONGEST_FIRST]
        return next((i for i, p in enumerate(places) if p == item.path or p in item.path.parents), len(places))

    items.sort(key=rank)  # stable: each file's tests keep their order


def allowed_skips() -> list[str]:
    """The skip reasons (regexes) this machine may have: none on the project's machine kind (root on amd64, the
    machine packages of scripts/building/machine.py, Terraform, ../shared beside the checkout). Any other skip fails
    the run (pytest_sessionfinish below): a suite that silently did not run is a red CI, never a green one."""
    allowed = []
    if os.geteuid() != 0:
        allowed.append(r"\broot\b")  # each root-only test says so: "... needs root", "... runs as root"
    if platform.machine().lower() in ("aarch64", "arm64"):
        allowed.append(r"^this machine is arm64")
    return allowed


SKIPPED: list[tuple[str, str]] = []  # (test, reason), as the run reports them


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        SKIPPED.append((report.nodeid, str(report.longrepr[2]).removeprefix("Skipped: ")))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # a worker's skips are judged once, where every report arrives
        return
    allowed = allowed_skips()
    unexpected = [(test, reason) for test, reason in SKIPPED if not any(re.search(p, reason) for p in allowed)]
    if unexpected:
        lines = "\n".join(f"  {test}: {reason}" for test, reason in unexpected)
        session.config.get_terminal_writer().line(
            f"\nFAILED: {len(unexpected)} test(s) skipped that this machine must run "
            f"(allowed here: {allowed or 'none'}):\n{lines}",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


TERRAFORM = REPO / "scripts" / "terraform.sh"
# The tests' own image builds, apart from the user's `edgeml/subscriber`: no tag of theirs is overwritten.
TEST_IMAGES = "edgeml-tests/subscriber"
Run = Callable[..., subprocess.CompletedProcess[str]]
SHARED = Path(os.environ.get("EDGEML_SHARED", REPO.parent / "shared"))
SEED = SHARED / "seed"


@pytest.fixture(scope="session")
def seed() -> Path:
    if not (SEED / "xgboost_wine_quality.json").is_file():
        pytest.skip(f"the seed data is not at {SEED} (set EDGEML_SHARED to the shared/ folder)")
    return SEED


def machine_command(package: str) -> str:
    """A machine package's command, installed as the tooling installs it; a failure, never a skip, where it
    cannot be (the message says how to install it)."""
    try:
        return machine.command(package, progress=lambda message: None)
    except machine.MissingPackage as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = engine.ensure_engine(progress=lambda message: None)
    except engine.EngineError as exc:
        pytest.fail(f"no Docker engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    return engine.ensure_base_image(docker_client, progress=lambda message: None)


@pytest.fixture(scope="session")
def reference_model(seed: Path) -> Model:
    return Model(seed / "xgboost_wine_quality.json")


@pytest.fixture(scope="session")
def samples(seed: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((seed / "samples.json").read_text())
    return records


@pytest.fixture(autouse=True)
def core_errors_judged(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test during which a localgg core (tests/localgg/harness.py) logged an ERROR or swallowed an
    exception, unless the test declares it: `@pytest.mark.core_error(r"regex", ...)`, each pattern found with
    re.search in a recorded error, and each declared pattern recorded at least once (a stale declaration fails
    too). Torn down after the test's own fixtures, so a function core's errors while stopping are judged here."""
    yield
    expected = [pattern for mark in request.node.iter_markers("core_error") for pattern in mark.args]
    recorded = [error for core in list(UNJUDGED) for error in core.unjudged()]
    UNJUDGED[:] = [core for core in UNJUDGED if not core.closed]
    unexpected = [error for error in recorded if not any(re.search(p, error) for p in expected)]
    missing = [pattern for pattern in expected if not any(re.search(pattern, error) for error in recorded)]
    if unexpected:
        pytest.fail("the core logged errors the test did not declare (core_error):\n" + "\n".join(unexpected))
    if missing:
        pytest.fail(f"declared core errors never logged: {missing}; recorded: {recorded}")


@pytest.fixture
def gg() -> Iterator[CoreThread]:
    """A localgg core on its own thread (see tests/localgg/harness.py)."""
    core = CoreThread()
    yield core
    core.close()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Debian's mosquitto on a free loopback port, standing in for AWS IoT Core's broker (as the stack runs it)."""
    from localcloud import broker

    machine_command("mosquitto")
    # Anonymous: a test's own broker in its own folder, not the stack's (which knows each client, localcloud.broker).
    started = broker.start(tmp_path_factory.mktemp("mosquitto"))
    yield started.address
    started.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's distribution registry on a loopback port, standing in for the ECR registry; yields host:port."""
    from localcloud import registry as local_registry

    machine_command("docker-registry")
    server, host = local_registry.start(tmp_path_factory.mktemp("registry"))
    yield host
    server.terminate()
    server.wait(timeout=10)
    images.forget_registry(host)


@pytest.fixture(scope="session")
def moto_endpoint(registry: str) -> Iterator[str]:
    """moto as a real HTTP endpoint, as the local cloud runs it: IoT tagging added, ECR bound to the registry."""
    from localcloud import moto_aws
    from localcloud.registry import RegistryApi

    unbind = moto_aws.bind_ecr_to_registry(RegistryApi(registry))
    server, url = moto_aws.start()
    yield url
    server.stop()
    unbind()


@pytest.fixture(scope="session")
def subscriber_image(docker_client: docker.DockerClient) -> str:
    """The subscriber image (no model in it), built (offline where need be) once per session."""
    from scripts.building import image

    return image.build(docker_client, f"{TEST_IMAGES}:test", progress=lambda message: None).tag


@pytest.fixture(scope="session")
def terraform() -> Run:
    """scripts/terraform.sh: Terraform with the provider from this machine's mirror, or from the registry checked
    against the committed lock. A machine without Terraform fails here, naming it: `.ci/run` installs it
    (scripts/building/terraform_cli.py), and no Terraform test is ever skipped for its absence."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on the PATH: `python3 -m scripts.building.terraform_cli ensure` installs it")

    def run(
        *args: str, cwd: Path = REPO / "terraform", env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        # Always under a timeout: the AWS provider retries some failures for many minutes.
        return subprocess.run(
            [str(TERRAFORM), f"-chdir={cwd}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            # Every test's Terraform talks to a stand-in: none of the shell's AWS settings, as the tooling's own.
            env=isolation.environment({"TF_IN_AUTOMATION": "1", **(env or {})}),
            check=False,
        )

    return run
