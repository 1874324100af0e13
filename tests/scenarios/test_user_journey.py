"""A user's first weeks, in order: first deploy, a second stack beside it, no change, the shared state and its
lock, a publisher change, a model-only change, a challenger promoted, a broken subscriber rolled back, a user's own
component, destroy. All of it from a shell that holds the user's own AWS settings (tests/support/shell.py): a session
token, a profile of a config file whose credential_process fails, a credentials file that is not there, another
Region, and every other variable botocore and the Terraform AWS provider read. None of it is needed, and none of it
reaches any process of the local stack.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest

from scripts import isolation, product
from scripts.local import sandbox
from scripts.publishing import artifacts, components, modelfile
from tests.conftest import Run
from tests.support import checkout
from tests.support.eventually import eventually
from tests.support.make import NUCLEUS, PREDICTION, Make, installed, scripts_json, started_at, versions
from tests.support.models import small_model
from tests.support.shell import InTheUsersShell, descendants, environ_of, leaked, users_shell

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def make(
    terraform: Run, seed: Path, docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InTheUsersShell]:
    folder = tmp_path_factory.mktemp("journey")
    runner = InTheUsersShell(
        checkout.checkout_copy(folder / "checkout"), seed / "xgboost_wine_quality.json", users_shell(folder)
    )
    yield runner
    runner.stop()


# Each step a `make` run or a few, each a deployment followed to its end: about ten minutes in all, alone.
@pytest.mark.timeout(900)
class TestAUsersFirstWeeks:
    """One scenario in ordered steps, each starting from where the last one left the local cloud (the module's
    stack, tests/scenarios/conftest.py), each reported on its own so that one failure does not hide the others: a
    first `make deploy` from nothing, a second stack beside it, the same again through every `--json` command, the
    shared state and its lock, a publisher-only change, a model-only change, a challenger promoted, a broken
    subscriber rolled back, a user's own component published GDK's way beside ours, and `destroy`."""

    def test_01_first_deploy(self, make: Make, docker_client: docker.DockerClient) -> None:
        sandbox.stop(lambda message: None, make.root)
        first_deploy(make, docker_client)

    def test_01b_nothing_of_the_users_aws_settings_reaches_the_stack(
        self, make: InTheUsersShell, docker_client: docker.DockerClient
    ) -> None:
        users_settings_reach_nothing(make, docker_client)

    def test_01c_make_logs(self, make: Make) -> None:
        the_logs(make)

    def test_02_a_second_stack_beside(self, make: Make, docker_client: docker.DockerClient, tmp_path: Path) -> None:
        a_second_stack_beside(make, docker_client, Make(checkout.checkout_copy(tmp_path / "other"), make.model))

    def test_03_no_change_as_json(self, make: Make) -> None:
        no_change_as_json(make)

    def test_04_state_shared_locked_and_movable(self, make: Make) -> None:
        state_shared_locked_and_movable(make)

    def test_05_publisher_change(self, make: Make, docker_client: docker.DockerClient) -> None:
        publisher_change(make, docker_client)

    def test_06_model_only_redeploy(self, make: Make, docker_client: docker.DockerClient) -> None:
        model_only_redeploy(make, docker_client)

    def test_07_challenger_then_promote(self, make: Make) -> None:
        challenger_then_promote(make)

    def test_08_broken_subscriber(self, make: Make) -> None:
        broken_subscriber(make)

    def test_09_a_users_own_component(self, make: Make) -> None:
        a_users_own_component(make)

    def test_09b_the_devices_telemetry_is_in_s3(self, make: Make) -> None:
        telemetry_in_s3(make)

    def test_10_destroy(self, make: Make, docker_client: docker.DockerClient) -> None:
        destroy(make, docker_client)


def telemetry_in_s3(make: Make) -> None:
    """Every subscriber run of the weeks so far sent its windows through the core's PublishToIoTCore, the stack's
    broker and the Terraform-made IoT rule and Firehose stream (localcloud.rules, localcloud.firehose): in S3 under
    telemetry/windows/, named by the topic's device, each run's sequence numbers without a gap, the seed model's
    marked "no reference" (it ships without a profile), each with its counts."""
    cloud = make.cloud()
    s3 = boto3.client(
        "s3",
        endpoint_url=cloud.aws,
        region_name=cloud.region,
        aws_access_key_id=cloud.access_key_id,
        aws_secret_access_key=cloud.secret_access_key,
    )
    bucket = f"{make.prefix}-artifacts-{cloud.account}-{cloud.region}"

    def delivered() -> list[dict[str, Any]]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="telemetry/windows/").get("Contents", [])
        bodies = [gzip.decompress(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]
        return [json.loads(line) for body in bodies for line in body.decode().splitlines()]

    windows = eventually(lambda: [w for w in delivered() if w["messages"]], 120, 2, "windows with messages in S3")
    assert {w["device"] for w in windows} <= set(cloud.devices) and {w["thing"] for w in windows} <= set(cloud.devices)
    runs: dict[tuple[str, float], list[int]] = {}
    for window in delivered():
        assert window["schema"] == "edgeml.telemetry/1" and window["device"] == window["thing"]
        runs.setdefault((window["thing"], window["started"]), []).append(window["seq"])
    assert all(sorted(seqs) == list(range(len(seqs))) for seqs in runs.values()), runs
    assert any(w["profile"] is None for w in windows)
    assert all(sum(w["latency"]) == w["messages"] for w in windows)


def first_deploy(make: Make, docker_client: docker.DockerClient) -> None:
    done = make("deploy")
    assert done.returncode == 0, done.stderr
    assert f"prediction on {make.cloud().thing}: {PREDICTION}" in done.stdout
    # The first screen: Terraform's own output is in a log, summed up in one line per command.
    assert "terraform apply: Apply complete! Resources: " in done.stdout
    assert "Deprecated" not in done.stdout + done.stderr and "Terraform will perform" not in done.stdout
    assert "Apply complete!" in (make.root / "terraform.log").read_text()
    # Every artifact version kept locally: no lifecycle rule, which moto would never apply (terraform/README.md).
    s3 = make.client("s3")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"{make.prefix}-artifacts-")]
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    gg, thing = make.client("greengrassv2"), make.cloud().thing
    devices = gg.list_core_devices()["coreDevices"]
    assert [(d["coreDeviceThingName"], d["status"]) for d in devices] == [(thing, "HEALTHY")]
    (effective,) = gg.list_effective_deployments(coreDeviceThingName=thing)["effectiveDeployments"]
    assert effective["coreDeviceExecutionStatus"] == "SUCCEEDED"
    assert installed(make) == {
        make.names.publisher: ("1.0.0", "RUNNING"),
        make.names.subscriber: ("1.0.0", "RUNNING"),
        make.names.model: ("1.0.0", "FINISHED"),  # no lifecycle: "nothing done", as the nucleus says
        NUCLEUS[0]: NUCLEUS[1],
    }
    log = make.cloud().component_log(make.names.subscriber)
    assert PREDICTION in log.read_text()
    container = docker_client.containers.get(make.names.subscriber)
    assert container.status == "running"
    # Its log in the engine is bounded (a line a message would otherwise fill the device's disk).
    assert container.attrs["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }
    # `make device` prints, from the outputs, the installer command the local core joined with.
    joining = make("device", THING=thing)
    assert joining.returncode == 0, joining.stderr
    for flag in ("--aws-region", "--thing-group-name", "--thing-policy-name", "--tes-role-name",
                 "--tes-role-alias-name", "--component-default-user ggc_user:ggc_group", "--provision true",
                 "--setup-system-service true", f"--thing-name {thing}"):  # fmt: skip
        assert flag in joining.stdout, (flag, joining.stdout)


def users_settings_reach_nothing(make: InTheUsersShell, docker_client: docker.DockerClient) -> None:
    """`make status` answers from that shell, and no process of the stack holds a variable of the user's with the
    user's value (the stack sets the same names to its own: endpoints, Region, keys): Terraform (seen through the
    probe first on the PATH), the local cloud, its core (in the cloud's process), the core's components and the
    subscriber's container."""
    status = make("status")
    assert status.returncode == 0 and "HEALTHY" in status.stdout, status.stdout + status.stderr
    stack = make.cloud().pid
    environments = {pid: environ_of(pid) for pid in (stack, *descendants(stack))}
    components = [pid for pid, env in environments.items() if "SVCUID" in env]
    assert len(components) >= 2, "the publisher's and the subscriber's processes are among the stack's"
    assert {pid: leaked(env, make.shell) for pid, env in environments.items() if leaked(env, make.shell)} == {}
    assert {environments[pid]["AWS_REGION"] for pid in components} == {make.cloud().region}
    container = docker_client.containers.get(make.names.subscriber)
    assert leaked(dict(item.split("=", 1) for item in container.attrs["Config"]["Env"]), make.shell) == {}
    runs = make.terraform_environments()
    assert runs, "Terraform ran through the probe"
    assert [leaked(env, make.shell) for env in runs if leaked(env, make.shell)] == []
    assert all(env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") for env in runs)


def a_second_stack_beside(make: Make, docker_client: docker.DockerClient, other: Make) -> None:
    """Two checkouts, two Terraform `name_prefix`es, one Docker engine (the README's two stacks in one account, and
    a user's stack beside the tests'): each subscriber's container is named after its component, so each stack
    deploys, predicts and is destroyed without stopping the other's."""
    before = started_at(make, docker_client)
    try:
        done = other("deploy")
        assert done.returncode == 0, done.stderr
        assert f"prediction on {other.cloud().thing}: {PREDICTION}" in done.stdout
        assert other.names.subscriber != make.names.subscriber
        assert docker_client.containers.get(other.names.subscriber).status == "running"
        assert started_at(make, docker_client) == before  # not restarted by the other stack's deploy
        log = make.cloud().component_log(make.names.subscriber)
        assert product.follow_predictions(log, 1, timeout=30, since=log.stat().st_size) == [PREDICTION]
        assert other("destroy").returncode == 0
    finally:
        other.stop()
    assert started_at(make, docker_client) == before and not other.root.exists()


def no_change_as_json(make: Make) -> None:
    deployed = scripts_json(make, "deploy", "--model", str(make.model))
    assert deployed["image_pushed"] is False and deployed["deployment"] is None and deployed["changes"] == []
    assert {name: c["created"] for name, c in deployed["components"].items()} == {
        make.names.model: False,
        make.names.publisher: False,
        make.names.subscriber: False,
    }
    assert deployed["models"]["uploaded"] is False
    assert deployed["predictions"] == {make.cloud().thing: [PREDICTION]}
    status = scripts_json(make, "status")
    assert status["components"] == dict.fromkeys(make.names.names, "1.0.0")
    assert status["models"]["champion"]["sha256"] == artifacts.sha256(make.model)
    plan = scripts_json(make, "plan")
    assert {k: plan[k] for k in ("target", "changes", "add", "change", "destroy")} == {
        "target": "local",
        "changes": False,
        "add": 0,
        "change": 0,
        "destroy": 0,
    }
    assert "No changes." in Path(plan["plan"]).read_text()  # the full plan, as the workflow uploads it
    assert scripts_json(make, "apply")["thing_group_name"] == make.cloud().thing_group


def state_shared_locked_and_movable(make: Make) -> None:
    """The state is where a team keeps it (the S3 backend, in the bucket terraform/state made in the local cloud),
    the lock refuses a second writer and names the first (use_lockfile: a conditional PutObject, which S3 and moto
    refuse with 412 when the lock object exists), and `make state-local` / `make state` move it to disk and back
    with nothing to plan either way."""
    where = make.state_bucket()
    s3 = make.client("s3")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=where.bucket)["Contents"]] == [where.key]
    assert make.state()["resources"] and not (make.root / "terraform.tfstate").exists()
    # A teammate's apply (it changes something, so it asks), waiting at its approval prompt with the lock held.
    terraform = [str(make.repo / "scripts" / "terraform.sh"), f"-chdir={make.repo / 'terraform'}", "apply", "-no-color"]
    holder = subprocess.Popen(
        [
            *terraform,
            "-var",
            f"region={make.cloud().region}",
            "-var",
            "s3_use_path_style=true",
            "-var",
            "keep_images=9",
        ],
        # A teammate's Terraform pointed at the local cloud as the tooling points its own: no AWS setting of the shell.
        env=isolation.environment(
            {**make.cloud().environment(), "TF_DATA_DIR": str(make.root / "terraform")}, make.env
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        seen = ""
        while "Enter a value:" not in seen:  # the prompt ends no line: read as it comes
            char = holder.stdout.read(1)
            assert char, f"the holder's apply ended before it asked: {seen[-3000:]}"
            seen += char
        assert f"{where.key}.tflock" in [o["Key"] for o in s3.list_objects_v2(Bucket=where.bucket)["Contents"]]
        refused = make("apply")
        assert refused.returncode != 0
        assert "Error acquiring the state lock" in refused.stderr and "Who:" in refused.stderr, refused.stderr
        assert "OperationTypeApply" in refused.stderr and "force-unlock" in refused.stderr
        holder.stdin.write("no\n")
    finally:
        if holder.stdin is not None:
            holder.stdin.close()  # "no", or an EOF: either way the teammate's apply stops and releases the lock
        holder.wait(timeout=120)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=where.bucket)["Contents"]] == [where.key]  # released
    moved = make("state-local")
    assert moved.returncode == 0, moved.stderr
    assert json.loads((make.root / "terraform.tfstate").read_text())["resources"] == make.state()["resources"]
    assert scripts_json(make, "plan")["changes"] is False
    back = make("state")
    assert back.returncode == 0, back.stderr
    assert not (make.repo / "terraform" / "backend_override.tf").exists()
    assert scripts_json(make, "plan")["changes"] is False


def publisher_change(make: Make, docker_client: docker.DockerClient) -> None:
    recipe = make.repo / "components" / "publisher" / "recipe.yaml"
    assert "interval: 5" in recipe.read_text()
    recipe.write_text(recipe.read_text().replace("interval: 5", "interval: 2"))
    before = started_at(make, docker_client)
    done = make("deploy")
    assert done.returncode == 0, done.stderr
    assert f"\n  changes: ~ {make.names.publisher} 1.0.0 -> 1.0.1\n" in done.stdout
    assert versions(make, make.names.publisher) == ["1.0.0", "1.0.1"]
    assert versions(make, make.names.subscriber) == ["1.0.0"]
    assert installed(make)[make.names.publisher] == ("1.0.1", "RUNNING")
    assert started_at(make, docker_client) == before  # the subscriber's container was not restarted


def the_logs(make: Make) -> None:
    """`make logs` after the first deploy: the subscriber's last lines with their device; FOLLOW=1 prints a
    `result:` line within 2 s of its stamp (the core's own clock); a thing or a component nobody has is one line
    naming what exists, exit 2."""
    thing = make.cloud().thing
    shown = make("logs", COMPONENT="subscriber", GREP="result:")
    assert shown.returncode == 0, shown.stderr
    assert any(line.startswith(f"{thing} subscriber: ") and "result: [" in line for line in shown.stdout.splitlines())
    job = make.start("logs", COMPONENT="subscriber", GREP="result:", FOLLOW="1", SINCE="1m")

    def stamped() -> list[tuple[datetime, str]]:
        lines = [line for line in job.stdout if "result: [" in line]
        return [(datetime.fromisoformat(line.split(": ", 1)[1].split(" ", 1)[0].replace("Z", "+00:00")), line)
                for line in lines]  # fmt: skip

    try:
        eventually(stamped, 60, what="the last minute's result lines: the follower reads")
        began = datetime.now(UTC)  # a line stamped after this was written while it followed
        fresh = eventually(lambda: [line for at, line in stamped() if at > began], 30, what="a new result line")
        read_at = datetime.now(UTC)
        written = max(at for at, _ in stamped())
        assert (read_at - written).total_seconds() < 2, (fresh, read_at)
    finally:
        job.interrupt()
        job.finish(60)
    for wrong, named in (({"THING": "nobody"}, thing), ({"COMPONENT": "database"}, "subscriber, publisher")):
        refused = make("logs", **wrong)
        assert refused.returncode == 2 and refused.stderr.count("error:") == 1 and named in refused.stderr


def broken_subscriber(make: Make) -> None:
    """A model the subscriber cannot load is refused before any image is built; a subscriber release that fails on
    the device (a bug in its code, as a developer might ship) is rolled back by the device when it fails before it
    runs, and by the tooling (AUTO_ROLLBACK=1) when it fails after the device reported success."""
    broken = make.repo / "broken.json"
    broken.write_text("{}")
    done = make("deploy", MODEL_PATH=str(broken))
    assert done.returncode != 0
    assert f"model file {broken} is refused: learner is not an object" in done.stderr
    assert "building edgeml/subscriber" not in done.stdout and "pushing" not in done.stdout
    assert "artifact:" not in done.stdout  # nothing uploaded either
    assert versions(make, make.names.subscriber) == ["1.0.0"] and versions(make, make.names.model) == PROMOTED
    # A bug the image's own Install self-check (subscriber.check) trips over: the component never gets RUNNING,
    # breaks, and the device rolls the deployment back (FAILED_ROLLBACK_COMPLETE).
    check = make.repo / "components/subscriber/subscriber/check.py"
    source = check.read_text()
    check.write_text(source.replace("def main() -> int:\n", "def main() -> int:\n    raise SystemExit('a bug')\n", 1))
    done = make("deploy")
    check.write_text(source)
    assert done.returncode != 0
    error = done.stderr
    assert make.cloud().thing in error and make.names.subscriber in error
    assert "FAILED_ROLLBACK_COMPLETE" in error and "error(s)" in error  # the cause: it kept failing
    assert versions(make, make.names.subscriber) == ["1.0.0", "1.0.1"]
    assert installed(make)[make.names.subscriber] == ("1.0.0", "RUNNING")
    # A subscriber that dies 5 s after it starts: RUNNING is all the nucleus waits for, so the device reports
    # SUCCEEDED (DeploymentConfigMerger.waitForServicesToStart) and the component then breaks. The tooling's health
    # window catches it, names the component and its log, and with AUTO_ROLLBACK=1 deploys the last good state.
    app = make.repo / "components/subscriber/subscriber/app.py"
    source = app.read_text()
    dies = "def main() -> int:\n    import time\n\n    time.sleep(5)\n    return 1\n"  # its life, not a test wait
    app.write_text(source.replace("def main() -> int:\n", dies, 1))
    # A window long enough that a loaded machine's slow container start cannot outlast it; the watch ends at the
    # first breakage it sees, so this costs nothing when the component breaks as it should.
    done = make("deploy", AUTO_ROLLBACK="1", HEALTH_WINDOW="60")
    app.write_text(source)
    assert done.returncode != 0
    error = done.stderr
    assert "after the deployment succeeded, a component broke" in error
    assert f"{make.cloud().thing}: {make.names.subscriber} 1.0.2 is" in error
    assert str(make.cloud().component_log(make.names.subscriber)) in error
    assert "Rolled back: to deployment" in error
    assert versions(make, make.names.subscriber) == ["1.0.0", "1.0.1", "1.0.2"]
    # Rolled back: the previous subscriber runs again, and predictions flow.
    assert installed(make) == {
        make.names.publisher: ("1.0.1", "RUNNING"),
        make.names.subscriber: ("1.0.0", "RUNNING"),
        make.names.model: (PROMOTED[-1], "FINISHED"),  # the reference model again, deployed as it was promoted
        NUCLEUS[0]: NUCLEUS[1],
    }
    log = make.cloud().component_log(make.names.subscriber)
    assert product.follow_predictions(log, 1, timeout=30, since=log.stat().st_size) == [PREDICTION]


USER_COMPONENT = "com.example.GdkHello"


def effective_status(make: Make, deployment: str) -> tuple[str, list[str]] | None:
    """The device's status for a deployment and the nucleus's error stack, once it has reported it."""
    found = make.client("greengrassv2").list_effective_deployments(coreDeviceThingName=make.cloud().thing)
    for entry in found["effectiveDeployments"]:
        if entry["deploymentId"] == deployment:
            return entry["coreDeviceExecutionStatus"], entry.get("statusDetails", {}).get("errorStack", [])
    return None


def a_users_own_component(make: Make) -> None:
    """A GDK project published to a brand-new name with the calls GDK makes, in its order (ListComponentVersions
    for NEXT_PATCH, CreateBucket and PutObject for the zip build, CreateComponentVersion), then deployed to the
    core device's thing: it runs beside our thing group's components, as the nucleus keeps each target's own. Its
    artifact is in the user's own bucket, which the token exchange role may not read (moto enforces IAM): the first
    deployment fails with the nucleus's S3_GET_BUCKET_LOCATION_ACCESS_DENIED, the one after the user grants the
    role their bucket succeeds."""
    gg, s3 = make.client("greengrassv2"), make.client("s3")
    info = make.cloud()
    assert (
        gg.list_component_versions(arn=f"arn:aws:greengrass:{info.region}:{info.account}:components:{USER_COMPONENT}")[
            "componentVersions"
        ]
        == []
    )
    bucket = f"gdk-{info.region}-{info.account}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": info.region})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("main.sh", "echo hello from a GDK build; exec sleep 600\n")
    key = f"{USER_COMPONENT}/1.0.0/GdkHello.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=archive.getvalue())
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": USER_COMPONENT,
        "ComponentVersion": "1.0.0",
        "ComponentPublisher": "someone else",
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Artifacts": [{"Uri": f"s3://{bucket}/{key}", "Unarchive": "ZIP"}],
                "Lifecycle": {"run": "sh {artifacts:decompressedPath}/GdkHello/main.sh"},
            }
        ],
    }
    created = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
    components.wait_deployable(gg, created["arn"], attempts=10)
    thing = f"arn:aws:iot:{info.region}:{info.account}:thing/{info.thing}"
    # The device reads artifacts with the token exchange role, which reads this stack's artifacts only (moto
    # enforces it): the GDK bucket is refused as AWS refuses it, with the nucleus's code ...
    refused = gg.create_deployment(targetArn=thing, components={USER_COMPONENT: {"componentVersion": "1.0.0"}})

    def failed() -> tuple[str, list[str]] | None:
        status = effective_status(make, refused["deploymentId"])
        return status if status is not None and status[0] == "FAILED" else None

    status = eventually(failed, 60, 0.5, what="the deployment of an unreadable artifact FAILED")
    assert status is not None and status[1][-1] == "S3_GET_BUCKET_LOCATION_ACCESS_DENIED"
    # ... until the user lets the role read their bucket, as the developer guide's device-service-role page says.
    make.client("iam").put_role_policy(
        RoleName=f"{make.prefix}-token-exchange",
        PolicyName="gdk-artifacts",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
                    {"Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": f"arn:aws:s3:::{bucket}"},
                ],
            }
        ),
    )
    gg.create_deployment(targetArn=thing, components={USER_COMPONENT: {"componentVersion": "1.0.0"}})
    log = info.component_log(USER_COMPONENT)
    eventually(
        lambda: "hello from a GDK build" in (log.read_text() if log.exists() else ""),
        60,
        0.2,
        what="the user's component ran",
    )
    assert installed(make)[make.names.subscriber] == ("1.0.0", "RUNNING")  # ours untouched


PROMOTED = ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]  # the model's versions once challenger_then_promote is done


def model_only_redeploy(make: Make, docker_client: docker.DockerClient) -> None:
    """A retrained model with unchanged code: no image built or pushed, one new model component version, one
    deployment; the subscriber restarts on the new model (a new version is a new artifact folder, which its
    lifecycle reads) and its results name the model's version."""
    other = small_model(make.repo / "build" / "other", make.model.parent)
    expected = "[" + " ".join(json.dumps(p) for p in modelfile.check(other)) + "]"
    assert expected != PREDICTION
    before = started_at(make, docker_client)
    deployed = scripts_json(make, "deploy", "--model", str(other))
    assert deployed["image_pushed"] is False and deployed["models"]["uploaded"] is True
    assert {name: c["created"] for name, c in deployed["components"].items()} == {
        make.names.model: True,
        make.names.subscriber: False,
        make.names.publisher: False,
    }
    assert deployed["changes"] == [f"~ {make.names.model} 1.0.0 -> 1.0.1"]
    assert deployed["predictions"] == {make.cloud().thing: [expected]}
    assert started_at(make, docker_client) != before
    assert "(version 1.0.1)" in make.cloud().component_log(make.names.subscriber).read_text()


def challenger_then_promote(make: Make) -> None:
    """A challenger deployed beside the champion is scored in its shadow (its agreement in `status`); `make promote`
    makes it the champion in one model version and one deployment, uploading nothing."""
    champion = make.repo / "build" / "other" / "small.json"
    deployed = scripts_json(make, "deploy", "--model", str(champion), "--challenger", str(make.model))
    assert deployed["image_pushed"] is False
    assert [name for name, c in deployed["components"].items() if c["created"]] == [make.names.model]
    assert deployed["changes"] == [f"~ {make.names.model} 1.0.1 -> 1.0.2"]
    log = make.cloud().component_log(make.names.subscriber)
    eventually(lambda: product.last_agreement(log), 60, 0.2, what="a shadow record in the subscriber's log")
    status = scripts_json(make, "status")
    assert status["models"]["version"] == "1.0.2"
    assert status["models"]["challenger"]["sha256"] == artifacts.sha256(make.model)
    assert status["models"]["agreement"][make.cloud().thing]["count"] >= 2
    assert status["dropped"] == {make.cloud().thing: 0}  # the publisher's pace: nothing outran the subscriber
    done = make("promote")
    assert done.returncode == 0, done.stderr
    assert f"prediction on {make.cloud().thing}: {PREDICTION}" in done.stdout  # the former challenger's
    status = scripts_json(make, "status")
    assert status["models"]["version"] == "1.0.3" and "challenger" not in status["models"]
    assert status["models"]["champion"]["sha256"] == artifacts.sha256(make.model)
    refused = make("promote")
    assert refused.returncode != 0 and "has no challenger" in refused.stderr
    assert versions(make, make.names.model) == PROMOTED


def destroy(make: Make, docker_client: docker.DockerClient) -> None:
    """Our things go; what the user published stays, and the local cloud keeps running, whole, until they say
    FORCE=1."""
    done = make("destroy")
    assert done.returncode != 0
    assert USER_COMPONENT in done.stderr and "make destroy FORCE=1" in done.stderr
    assert installed(make) == {USER_COMPONENT: ("1.0.0", "RUNNING"), NUCLEUS[0]: NUCLEUS[1]}
    assert docker_client.containers.list(all=True, filters={"name": make.names.subscriber}) == []
    done_json = scripts_json(make, "destroy", "--force")
    assert done_json["local_cloud_stopped"] is True
    assert sandbox.find(make.root) is None
    assert not make.root.exists()  # state, registry data, logs
