"""Releases that survive faults: each fault done to a stack of the test's own, as it happens to a user (Ctrl-C, kill
-9, a full disk, a container the engine kills, an object replaced in the bucket), and each test says what "nothing
lost" means for it and checks it: the exit status tells the truth, the devices end on a release that worked, the
next run converges without FORCE or hand repairs.

One stack serves the module, in order (Terraform first, destroy last), as faults come to one installation. Nothing
is mocked: `make` in a copy of the checkout, Terraform with the real AWS provider against moto, localgg as the core
device running the real components in Docker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from localgg.leftovers import LEDGER, live_members
from scripts import product
from tests.conftest import Run
from tests.support.eventually import eventually
from tests.support.make import PREDICTION, Make, installed, stack_in_a_copy, versions

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def make(
    terraform: Run, seed: Path, docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Make]:
    yield from stack_in_a_copy(tmp_path_factory.mktemp("faults"), seed / "xgboost_wine_quality.json")


def text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def errors(stderr: str) -> list[str]:
    """The tooling's own error lines (make adds its `make: ***` line after them)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def deployments(make: Make) -> list[str]:
    return [d["deploymentId"] for d in make.client("greengrassv2").list_deployments(historyFilter="ALL")["deployments"]]


def predicting(make: Make) -> None:
    """The device's subscriber writes a new prediction: the user's release still does its job."""
    log = make.cloud().component_log(make.names.subscriber)
    since = log.stat().st_size
    assert product.follow_predictions(log, 1, timeout=90, since=since) == [PREDICTION]


def publisher_interval(make: Make, seconds: int) -> None:
    """A publisher-only change, as a user makes one: a new publisher version with a new artifact."""
    recipe = make.repo / "components" / "publisher" / "recipe.yaml"
    lines = [
        f"    interval: {seconds}" if line.startswith("    interval: ") else line for line in text(recipe).split("\n")
    ]
    recipe.write_text("\n".join(lines))


def on_the_device(make: Make) -> dict[str, str]:
    """The components' states as the core itself sees them (`greengrass-cli component list`; localgg's
    status.json), not as the cloud last heard."""
    cloud = make.cloud()
    status = json.loads(text(Path(cloud.devices[cloud.thing].core) / "status.json") or "{}")
    return {name: component["state"] for name, component in status.get("components", {}).items()}


def deployed(make: Make) -> dict[str, tuple[str, str]]:
    """The state a fault starts from: `make deploy` says the group runs the desired release, healthy."""
    done = make("deploy")
    assert done.returncode == 0, done.stderr
    return installed(make)


def wait_printed(job: Any, line: str, timeout: float = 600) -> None:
    eventually(lambda: job.printed(line) or job.process.poll() is not None, timeout=timeout, what=line)
    assert job.printed(line), f"the command ended before printing {line!r}"


CREATED = "created for"  # pipeline: "deployment <id> created for <group> ...; following the devices"


def test_terraform_interrupted_mid_apply_saves_its_state_and_the_next_apply_converges(make: Make) -> None:
    """Ctrl-C while Terraform creates the stack. Nothing lost: Terraform is let finish what it started and write
    its state (scripts.cloud.infra.interruptibly; SIGINT is Terraform's graceful stop, SIGKILL would leave resources
    outside the state and AlreadyExists on the next apply), so the next `make apply` creates only what is missing and
    `make plan` then shows no change."""
    log = make.root / "terraform.log"
    job = make.start("apply")
    # The stack's own resources, not the state bucket's, which a first command of a new local cloud makes first.
    creating = "module.artifact_bucket.aws_s3_bucket.this: Creating..."
    eventually(lambda: creating in text(log), timeout=300, what="Terraform creating the stack")
    job.interrupt()
    done = job.finish()
    assert done.returncode != 0
    assert "interrupted" in done.stderr and "Traceback" not in done.stderr
    assert make.state()["resources"], "what Terraform created before the interrupt is in its state (in S3)"
    interrupted = text(log)
    again = make("apply")
    assert again.returncode == 0, again.stderr + "\nthe interrupted apply's log:\n" + interrupted[-6000:]
    assert "AlreadyExists" not in text(log)
    plan = make("plan")
    assert plan.returncode == 0 and "changes: False" in plan.stdout, plan.stdout


def test_an_artifact_replaced_in_s3_after_registration_is_refused_and_changes_nothing(make: Make) -> None:
    """The service computes each artifact's digest at CreateComponentVersion and the nucleus checks every download
    against it (ArtifactDownloader, ARTIFACT_CHECKSUM_MISMATCH). Nothing lost: the device keeps the release it runs
    (same versions, still predicting), no file of the refused artifact under its final name, and with the object
    put back, `REDEPLOY=1` installs the same versions (a re-run without it says the group's deployment failed)."""
    before = deployed(make)
    publisher_interval(make, 3)
    staged = make("deploy", DRY_RUN="1")  # registered, not deployed
    assert staged.returncode == 0, staged.stderr
    version = versions(make, make.names.publisher)[-1]
    assert version != before[make.names.publisher][0]
    gg, s3 = make.client("greengrassv2"), make.client("s3")
    cloud = make.cloud()
    arn = f"arn:aws:greengrass:{cloud.region}:{cloud.account}:components:{make.names.publisher}:versions:{version}"
    recipe = json.loads(gg.get_component(arn=arn, recipeOutputFormat="JSON")["recipe"])
    uris = {a.get("URI") or a["Uri"] for m in recipe["Manifests"] for a in m.get("Artifacts", [])}  # either case
    (uri,) = {uri for uri in uris if uri.startswith("s3://")}
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=b"PK\x05\x06 not the artifact that was registered")
    done = make("deploy")
    assert done.returncode != 0
    assert "ARTIFACT_CHECKSUM_MISMATCH" in done.stderr and cloud.thing in done.stderr
    assert installed(make) == before
    device = Path(cloud.devices[cloud.thing].core).parent  # its core, and the folder the agent downloads into
    assert [path for path in device.rglob("*.zip") if version in path.parts] == []
    predicting(make)
    s3.put_object(Bucket=bucket, Key=key, Body=original)
    rerun = make("deploy")  # the failed deployment is still the group's: said again, not passed over
    assert rerun.returncode != 0 and "REDEPLOY=1" in rerun.stderr
    again = make("deploy", REDEPLOY="1")
    assert again.returncode == 0, again.stderr
    assert installed(make)[make.names.publisher] == (version, "RUNNING")


def test_a_full_disk_while_building_is_one_error_line_and_the_next_run_succeeds(make: Make) -> None:
    """The publisher zip's folder on a filesystem of 64 KiB (a tmpfs mounted over it): the build fails with ENOSPC.
    Nothing lost: one `error:` line naming the cause and the file, no traceback, no zip under its final name and
    no partial one left filling the disk, nothing registered or deployed, the device still predicting; with the
    space back, the same `make deploy` succeeds."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    before = deployed(make)
    publisher_interval(make, 4)
    registered = versions(make, make.names.publisher)
    folder = make.repo / "build" / "deploy" / "publisher"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder)], check=True)
    try:
        done = make("deploy")
        left = sorted(path.name for path in folder.rglob("*") if path.is_file())
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    assert done.returncode != 0
    (line,) = errors(done.stderr)
    assert "No space left on device" in line and str(folder) in line, line
    assert "Traceback" not in done.stderr
    # The local cloud it started runs on, and the failure says so, with the way to stop it.
    assert f"the local cloud is still running (pid {make.cloud().pid})" in done.stderr
    assert "`make destroy`" in done.stderr
    assert left == []
    assert versions(make, make.names.publisher) == registered and installed(make) == before
    predicting(make)
    after = deployed(make)
    assert after[make.names.publisher][0] not in {v for v, _ in before.values()}


def test_ctrl_c_mid_rollout_then_a_rerun_follows_the_same_deployment_to_its_end(make: Make) -> None:
    """Ctrl-C once the deployment is created: the tooling stops following, the devices carry on (a deployment is
    the cloud's, not the terminal's). Nothing lost: the exit status says interrupted, and running it again creates
    no second deployment, follows the one there is, and exits 0 only once the device runs it, healthy."""
    deployed(make)
    publisher_interval(make, 6)
    job = make.start("deploy")
    wait_printed(job, CREATED)
    job.interrupt()
    done = job.finish()
    assert done.returncode != 0 and "running it again carries on" in done.stderr
    made = deployments(make)
    again = make("deploy")
    assert again.returncode == 0, again.stderr
    assert "already wants these versions" in again.stdout
    assert deployments(make) == made
    version = versions(make, make.names.publisher)[-1]
    assert installed(make)[make.names.publisher] == (version, "RUNNING")


def container(client: docker.DockerClient, name: str, other_than: str = "") -> Any:
    """`name`'s container when it runs and is not `other_than`, else None."""
    try:
        found = client.containers.get(name)
    except docker.errors.NotFound:
        return None
    return found if found.status == "running" and found.id != other_than else None


def running_container(client: docker.DockerClient, name: str, other_than: str = "") -> Any:
    return eventually(
        lambda: container(client, name, other_than), timeout=120, interval=0.5, what=f"{name}'s container running"
    )


def test_the_subscriber_container_killed_once_comes_back_by_itself(
    make: Make, docker_client: docker.DockerClient
) -> None:
    """The engine kills the container (OOM, `docker kill`): Run exits 137, the component is ERRORED and the nucleus
    starts it again (GenericExternalService: an error runs Recover and restarts it, BROKEN only on the third).
    Nothing lost: a new container, the device's own view RUNNING, predictions again, no deployment needed."""
    deployed(make)
    made = deployments(make)
    killed = running_container(docker_client, make.names.subscriber)
    killed.kill()
    running_container(docker_client, make.names.subscriber, other_than=killed.id)
    eventually(lambda: on_the_device(make)[make.names.subscriber] == "RUNNING", timeout=60, what="RUNNING again")
    predicting(make)
    assert deployments(make) == made
    # The cloud heard of the error at once and of nothing since: the nucleus reports a component that goes ERRORED
    # or BROKEN, not one that recovers (FleetStatusService.handleServiceStateChange), until its next periodic report.
    assert installed(make)[make.names.subscriber][1] == "ERRORED"


def test_a_subscriber_killed_until_broken_fails_the_rerun_and_redeploy_recovers_it(
    make: Make, docker_client: docker.DockerClient
) -> None:
    """Three errors and the nucleus stops restarting the component: BROKEN, reported at once
    (FleetStatusService). Nothing lost: `make deploy` with nothing changed says which device and component and how
    out, exit non-zero; `REDEPLOY=1` makes a new deployment of the same versions, which restarts a BROKEN component
    (the nucleus's way back), and predictions come again."""
    last = ""
    for _ in range(3):  # the nucleus counts errors: the one of the test before may already be among them

        def broken_or_running(last: str = last) -> Any:
            broken = installed(make)[make.names.subscriber][1] == "BROKEN"
            return "BROKEN" if broken else container(docker_client, make.names.subscriber, other_than=last)

        found = eventually(broken_or_running, timeout=120, interval=0.5, what="the subscriber running again")
        if found == "BROKEN":
            break
        last = found.id
        found.kill()
    eventually(lambda: installed(make)[make.names.subscriber][1] == "BROKEN", timeout=120, what="BROKEN")
    done = make("deploy")
    assert done.returncode != 0
    assert make.cloud().thing in done.stderr and make.names.subscriber in done.stderr and "BROKEN" in done.stderr
    assert "REDEPLOY=1" in done.stderr
    again = make("deploy", REDEPLOY="1")
    assert again.returncode == 0, again.stderr
    assert installed(make)[make.names.subscriber][1] == "RUNNING"
    predicting(make)


def test_a_second_rollback_after_an_interrupted_one_lands_on_the_last_good_release(make: Make) -> None:
    """Good A; B, whose publisher dies 5 s after it starts (the device says SUCCEEDED, the health window says
    otherwise and tags it); `make rollback` interrupted once its deployment exists; `make rollback` again. Nothing
    lost: the devices end on A, healthy, whatever the interrupted rollback left as the newest deployment."""
    good = deployed(make)
    app = make.repo / "components" / "publisher" / "publisher" / "app.py"
    source = text(app)
    # The broken publisher lives 5 s (code under test, not a wait of the test), then dies: RUNNING first.
    app.write_text(
        source.replace(
            "def main() -> int:\n", "def main() -> int:\n    import time\n\n    time.sleep(5)\n    return 1\n", 1
        )
    )
    try:
        broken = make("deploy")
    finally:
        app.write_text(source)
    assert broken.returncode != 0 and "after the deployment succeeded, a component broke" in broken.stderr
    job = make.start("rollback")
    wait_printed(job, CREATED)
    job.interrupt()
    assert job.finish().returncode != 0
    back = make("rollback")
    assert back.returncode == 0, back.stderr
    assert installed(make) == good
    predicting(make)


def test_kill_9_of_the_local_cloud_mid_rollout_leaves_nothing_running_and_the_rerun_converges(
    make: Make, docker_client: docker.DockerClient
) -> None:
    """SIGKILL of the stack's process while a deployment rolls out: no cleanup runs. Nothing lost: the command
    following it fails in one line; the registry and broker die with it (PR_SET_PDEATHSIG); what its core's
    components left running is ended by the next start (as systemd ends a dead nucleus's unit); the dead stack's
    logs are kept; the re-run starts a new local cloud and ends with one subscriber container, predicting."""
    deployed(make)
    publisher_interval(make, 7)
    job = make.start("deploy")
    wait_printed(job, CREATED)
    cloud = make.cloud()
    core = Path(cloud.devices[cloud.thing].core)
    groups = [int(line.split()[0]) for line in text(core / LEDGER).splitlines()[1:]]  # after its namespace line
    assert groups, "the core writes down its components' process groups"
    os.kill(cloud.pid, signal.SIGKILL)
    done = job.finish()
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(errors(done.stderr)) == 1
    again = make("deploy")
    assert again.returncode == 0, again.stderr
    assert "its folder moved to" in again.stdout
    assert not [group for group in groups if live_members(group)]
    assert (make.root.with_name("local.previous") / "stack.log").stat().st_size > 0  # the crash's logs kept
    assert len(docker_client.containers.list(all=True, filters={"name": f"^/{make.names.subscriber}$"})) == 1
    assert f"prediction on {make.cloud().thing}: {PREDICTION}" in again.stdout


def test_destroy_interrupted_then_run_again_leaves_nothing_and_needs_no_force(
    make: Make, docker_client: docker.DockerClient
) -> None:
    """Ctrl-C while `make destroy` has Terraform deleting the stack. Nothing lost (here: nothing kept): the re-run
    finds what is left through the same state, deletes it, and stops the local cloud without FORCE=1, since all
    it holds is ours."""
    log = make.root / "terraform.log"
    offset = len(text(log))
    job = make.start("destroy")
    eventually(lambda: "Destroying..." in text(log)[offset:], timeout=600, what="Terraform destroying the stack")
    job.interrupt()
    done = job.finish()
    assert done.returncode != 0
    again = make("destroy")
    assert again.returncode == 0, again.stderr
    assert "FORCE" not in again.stderr
    assert not make.root.exists()
    assert docker_client.containers.list(all=True, filters={"name": make.names.subscriber}) == []
