"""`TARGET=aws` end to end, as the README's "Deploying to a real AWS account" has a user run it, against the local
cloud used as an account: a stack started with `python -m localcloud stack`, reached only over HTTP with SigV4 and
IAM enforced, through `AWS_ENDPOINT_URL` and keys (`python -m localcloud env`), as LocalStack users run Terraform
with `tflocal`. The tooling cannot tell it from an account: it takes the normal credential chain.

Who does what, as in an account:
- the account's owner (an administrator) runs `make state` and `make apply` (Terraform's needs) and the final
  `make destroy`;
- the device's installer runs with the policy `make device` prints, and nothing more (`python -m localcloud
  install` makes the Greengrass installer's calls, signed with those keys);
- the deploying commands run as an IAM user whose only policy is built from the README's table
  (tests/support/deployer.py). The local cloud records what it allowed (localcloud.audit, its CloudTrail): every
  action of the table is used, and the commands fail, naming an action, without any one checked row.

The test adds to the README's commands only what a test needs: CONFIRM (no terminal to ask on), the CPU of this
machine's device (PLATFORMS), short health windows, and the faults it provokes (a release that breaks, an image
that expired)."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from localcloud import audit, info
from localcloud.stack import AUDIT_FILE
from scripts import isolation
from scripts.platforms import this_machine
from tests.conftest import REPO, Run
from tests.support import checkout, deployer
from tests.support.eventually import eventually
from tests.support.make import Make
from tests.support.models import small_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]
THING = "pi-1"  # the README's
NOT_YET = "pi-2"  # in Terraform's core_devices, never installed: following must neither wait for it nor hide it
FAST = {"PLATFORMS": this_machine().docker, "HEALTH_WINDOW": "5"}


def readme_commands() -> list[str]:
    """The `make` commands of the README's block, without their comments."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Deploying to a real AWS account") :]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("make ")]


# What this suite runs, in order: the README's block, word for word.
SEQUENCE = [
    "make state TARGET=aws",
    "make plan TARGET=aws",
    "make apply TARGET=aws",
    f"make device TARGET=aws THING={THING}",
    "make deploy TARGET=aws DRY_RUN=1",
    "make deploy TARGET=aws",
    "make status TARGET=aws",
    "make rollback TARGET=aws",
    "make deploy TARGET=aws CHALLENGER_PATH=m.json",
    "make promote TARGET=aws",
    "make monitor TARGET=aws",
    "make destroy TARGET=aws",
]


class AsAUser(Make):
    """`make` in a copy of the checkout from a shell whose only AWS settings are the account's: its endpoints, its
    Region and one identity's keys."""

    def __init__(self, repo: Path, model: Path, cloud: dict[str, str]) -> None:
        super().__init__(repo, model)
        self.cloud_env = cloud
        self.keys: dict[str, str] = {}

    @property
    def env(self) -> dict[str, str]:
        return self.env_for(self.keys)

    def env_for(self, keys: dict[str, str]) -> dict[str, str]:
        quiet = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        devices = json.dumps({THING: {}, NOT_YET: {}})
        # Telemetry windows of 10 s, in S3 a minute later (Firehose's shortest buffer): `make monitor` has some.
        telemetry = {"TF_VAR_telemetry_window_seconds": "10", "TF_VAR_telemetry_buffer_seconds": "60"}
        return {**isolation.environment({**self.cloud_env, **quiet, **keys}), "TERM": "dumb",
                "TF_VAR_name_prefix": self.prefix, "TF_VAR_core_devices": devices, **telemetry}  # fmt: skip

    def readme(self, command: str, **added: str) -> subprocess.CompletedProcess[str]:
        """One of the README's commands, with what the test adds."""
        words = command.split()
        assert command in SEQUENCE and words[0] == "make", command
        given = dict(word.split("=", 1) for word in words[2:])
        return self(words[1], **{**given, **added})


@dataclass
class Account:
    make: AsAUser
    root: Path  # the local cloud's folder
    owner: dict[str, str]  # the account owner's keys, as AWS_* variables
    id: str

    def client(self, service: str, keys: dict[str, str] | None = None) -> Any:
        chosen = keys or self.owner
        endpoint = self.make.cloud_env.get(
            f"AWS_ENDPOINT_URL_{service.upper()}", self.make.cloud_env["AWS_ENDPOINT_URL"]
        )
        return boto3.client(
            service,
            region_name=self.make.cloud_env["AWS_REGION"],
            endpoint_url=endpoint,
            aws_access_key_id=chosen["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=chosen["AWS_SECRET_ACCESS_KEY"],
        )

    def user(self, name: str, policy: dict[str, Any]) -> dict[str, str]:
        """An IAM user of the account holding only `policy`; its keys."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        self.allow(name, policy)
        made = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": made["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": made["SecretAccessKey"]}

    def allow(self, name: str, policy: dict[str, Any]) -> None:
        self.client("iam").put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))

    def as_owner(self) -> AsAUser:
        self.make.keys = self.owner
        return self.make

    def as_deployer(self) -> AsAUser:
        self.make.keys = self.deployer
        return self.make

    deployer: dict[str, str] = field(default_factory=dict)  # its keys, made once Terraform's outputs exist

    def values(self) -> dict[str, str]:
        """The stack's values the README's table names."""
        outputs = json.loads(self.terraform_output())
        backend = (self.make.repo / "terraform" / "state.s3.tfbackend").read_text()
        setting = dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', backend, re.MULTILINE))
        return {
            "region": outputs["region"]["value"],
            "account": self.id,
            "artifact_bucket": outputs["artifact_bucket"]["value"],
            "repository": outputs["repository_url"]["value"].split("/", 1)[1],
            "state_bucket": setting["bucket"],
            "state_key": setting["key"],
        }

    def terraform_output(self) -> str:
        """As the owner, whoever the commands run as."""
        done = subprocess.run(
            [str(REPO / "scripts" / "terraform.sh"), "-chdir=terraform", "output", "-json"],
            cwd=self.make.repo,
            env=self.make.env_for(self.owner),
            timeout=300,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def allowed(self, user: str) -> set[str]:
        arn = f"arn:aws:iam::{self.id}:user/{user}"
        return audit.read(self.root / AUDIT_FILE).get(arn, set())


@pytest.fixture(scope="module")
def account(terraform: Run, seed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    repo = checkout.checkout_copy(tmp_path_factory.mktemp("checkout"))
    root = tmp_path_factory.mktemp("account") / "cloud"
    prefix = checkout.name_prefix()
    log = root.parent / "stack.log"  # a file, not a pipe nobody reads: a full pipe would stop the stack mid-request
    with log.open("wb") as output:
        stack = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "stack", "--root", str(root), "--thing-name", THING,
             "--thing-group", f"{prefix}-cores"],
            cwd=REPO, env=isolation.environment({}), stdout=output, stderr=output, start_new_session=True,
        )  # fmt: skip
    try:

        def started() -> info.StackInfo | None:
            assert stack.poll() is None, log.read_text()[-3000:]
            return info.find(root)

        running = eventually(started, 180, 0.5, what="the local cloud's stack.json")
        assert running is not None  # eventually returns only a truthy value
        environment = running.environment()
        owner = {name: environment.pop(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        make = AsAUser(repo, seed / "xgboost_wine_quality.json", environment)
        make.prefix = prefix
        make.names = checkout.components(prefix)
        yield Account(make, root, owner, running.account)
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
        subprocess.run([sys.executable, "-m", "localcloud", "reap", "--root", str(root)], cwd=REPO, check=False)


def _lines(s3: Any, bucket: str, key: str) -> list[str]:
    """A Firehose object's JSON lines (gzip)."""
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode().splitlines()


def passed(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def failed(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout[-3000:]
    return done.stderr


class TestTheAccountPath:
    """In order, each step on the account the previous ones left."""

    def test_00_the_readme_is_this_sequence(self) -> None:
        assert readme_commands() == SEQUENCE

    def test_01_state_and_apply_go_ahead_only_for_the_account_the_credentials_reach(self, account: Account) -> None:
        """CONFIRM is compared with sts:GetCallerIdentity: another account's id changes nothing."""
        make = account.as_owner()
        refused = failed(make.readme("make state TARGET=aws", CONFIRM="999999999999"))
        assert f"CONFIRM=999999999999 is not the account your AWS credentials reach ({account.id})" in refused
        assert not (make.repo / "terraform" / "state.s3.tfbackend").exists()
        passed(make.readme("make state TARGET=aws", CONFIRM=account.id))
        planned = make.readme("make plan TARGET=aws")
        assert re.search(r"Plan: \d+ to add, 0 to change, 0 to destroy", passed(planned) + planned.stderr)
        failed(make.readme("make apply TARGET=aws", CONFIRM="999999999999"))
        passed(make.readme("make apply TARGET=aws", CONFIRM=account.id))
        account.deployer = account.user("deployer", deployer.policy(account.values()))

    def test_02_the_device_joins_with_the_policy_make_device_prints(self, account: Account) -> None:
        make = account.as_deployer()
        done = subprocess.run(
            [sys.executable, "-m", "scripts", "device", "--target", "aws", "--thing", THING, "--json"],
            cwd=make.repo, env=make.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        joining = json.loads(passed(done))
        printed = passed(make.readme(f"make device TARGET=aws THING={THING}"))
        assert " ".join(joining["installer_args"]) in printed
        installer = account.user("installer", joining["iam_policy"])
        env = isolation.environment({**make.cloud_env, **installer})
        installed = subprocess.run(
            [sys.executable, "-m", "localcloud", "install", "--stack", str(account.root), "--",
             *joining["installer_args"]],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert f"provisioned {THING}" in passed(installed)

    def test_03_deploy_as_the_readmes_deployer(self, account: Account) -> None:
        """The first release: a dry run changes nothing, then the deployment is followed to SUCCEEDED and the health
        window, with only the table's permissions."""
        make = account.as_deployer()
        dry = make.readme("make deploy TARGET=aws DRY_RUN=1", **FAST)
        assert "dry run: no deployment created" in passed(dry) + dry.stderr
        gg = account.client("greengrassv2")
        assert gg.list_deployments()["deployments"] == []
        deployed = make.readme("make deploy TARGET=aws", **FAST)
        done = passed(deployed) + deployed.stderr
        assert f"{THING}" in done and "1 succeeded" in done
        # Done once every device that joined is: the thing that never did is named, with the way in.
        assert f"1 of the group's things never joined ({NOT_YET})" in done and "make device THING=" in done
        status = passed(make.readme("make status TARGET=aws"))
        assert THING in status and "HEALTHY" in status

    def test_04_a_release_that_breaks_after_it_succeeded_then_rollback(self, account: Account) -> None:
        """A publisher that dies 5 s after it starts: the device reports SUCCEEDED, the health window sees it break and
        marks the release unhealthy (greengrass:TagResource); `make rollback` returns to the first release."""
        make = account.as_deployer()
        app = make.repo / "components/publisher/publisher/app.py"
        source = app.read_text()
        # The fault itself, not a wait: the publisher runs long enough to be RUNNING and reported, then exits.
        app.write_text(source.replace("def main() -> int:\n", "def main() -> int:\n    import time\n\n"
                                      "    time.sleep(5)\n    return 1\n", 1))  # fmt: skip
        try:
            broke = failed(make("deploy", TARGET="aws", **{**FAST, "HEALTH_WINDOW": "60"}))
        finally:
            app.write_text(source)
        assert "after the deployment succeeded, a component broke" in broke
        gg = account.client("greengrassv2")
        latest = max(gg.list_deployments(historyFilter="ALL")["deployments"], key=lambda d: d["creationTimestamp"])
        assert gg.get_deployment(deploymentId=latest["deploymentId"])["tags"] == {"edgeml:health": "UNHEALTHY"}
        back = passed(make.readme("make rollback TARGET=aws", **FAST))
        assert "the last one every device took and stayed healthy on" in back and "1 succeeded" in back

    def test_05_a_challenger_then_promote(self, account: Account, tmp_path: Path, seed: Path) -> None:
        make = account.as_deployer()
        challenger = small_model(tmp_path, seed)
        passed(make.readme("make deploy TARGET=aws CHALLENGER_PATH=m.json", **FAST, CHALLENGER_PATH=str(challenger)))
        promoted = passed(make.readme("make promote TARGET=aws", **FAST))
        assert "promoted" in promoted

    def test_06_a_rollback_to_a_release_whose_image_expired_is_refused_before_anything_changes(
        self, account: Account
    ) -> None:
        make = account.as_deployer()
        ecr, gg = account.client("ecr"), account.client("greengrassv2")
        repository = account.values()["repository"]
        images = ecr.list_images(repositoryName=repository)["imageIds"]
        ecr.batch_delete_image(repositoryName=repository, imageIds=images)  # as a lifecycle rule would
        before = gg.list_deployments(historyFilter="ALL")["deployments"]
        refused = failed(make.readme("make rollback TARGET=aws", **FAST))
        assert "is no longer in the repository" in refused and "no deployment was created" in refused
        assert images[0]["imageDigest"] in refused
        assert gg.list_deployments(historyFilter="ALL")["deployments"] == before

    def test_07_monitor_reads_the_devices_windows_from_the_account(self, account: Account) -> None:
        """`make monitor TARGET=aws` as the deployer: the device's windows, delivered by the account's IoT rule and
        Firehose into its bucket, reported as the monitor's own code reports the same objects read by the owner,
        and nothing in the account changed by it."""
        s3, bucket = account.client("s3"), account.values()["artifact_bucket"]

        def delivered() -> list[str]:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="telemetry/windows/").get("Contents", [])
            return [item["Key"] for item in listed]

        eventually(delivered, 180, 2, what="telemetry windows in the artifact bucket")
        before = {item["Key"]: item["ETag"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        make = account.as_deployer()
        printed = passed(make.readme("make monitor TARGET=aws"))
        assert THING in printed and "no reference" in printed  # the seed model ships without a profile
        for _ in range(3):  # Firehose may deliver an object while the monitor reads: compare over the same ones
            keys = delivered()
            done = subprocess.run(
                [sys.executable, "-m", "scripts", "monitor", "--target", "aws", "--json"],
                cwd=make.repo, env=make.env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            record = json.loads(passed(done))
            if delivered() == keys:
                break
        windows = [json.loads(line) for key in keys for line in _lines(s3, bucket, key)]
        assert record["group"]["messages"] == sum(w["messages"] for w in windows if w["device"] == THING) > 0
        assert record["unreadable_objects"] == [] and record["bad_lines"] == 0
        after = {item["Key"]: item["ETag"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        # Only read: every object is as it was; what is new is what Firehose delivered meanwhile.
        assert {key: after.get(key) for key in before} == before
        assert all(key.startswith("telemetry/windows/") for key in after.keys() - before.keys())

    def test_08_the_deployer_used_every_action_of_the_table(self, account: Account) -> None:
        """Nothing more: each action of a checked row was allowed to the deployer at least once by the commands above
        (the ones of destroy are checked after it)."""
        used = account.allowed("deployer")
        destroy_only = {"greengrass:DeleteComponent", "s3:ListBucketVersions", "s3:DeleteObjectVersion",
                        "ecr:ListImages", "ecr:BatchDeleteImage"}  # fmt: skip
        listed = {action for row in deployer.rows() if row.checked for action in row.actions}
        assert listed - destroy_only - used == set()

    @pytest.mark.parametrize("row", [row.sid for row in deployer.rows() if row.checked])
    def test_09_without_any_checked_row_a_command_fails_naming_its_action(self, account: Account, row: str) -> None:
        """The deployer's policy without one statement: `make status`, else a new deployment of the same release
        (REDEPLOY=1), fails, and says which action was refused. Without ImagePush, the release has new subscriber
        code: only a new image is pushed (ECR's registry endpoint checks each push call)."""
        (actions,) = [r.actions for r in deployer.rows() if r.sid == row]
        make = account.as_deployer()
        app = make.repo / "components/subscriber/subscriber/app.py"
        source = app.read_text()
        account.allow("deployer", deployer.policy(account.values(), without=row))
        try:
            done = make.readme("make status TARGET=aws")
            if done.returncode == 0:
                if row == "ImagePush":
                    app.write_text(source + "\n# a release with new code\n")
                done = make.readme("make deploy TARGET=aws", **FAST, REDEPLOY="1")
        finally:
            app.write_text(source)
            account.allow("deployer", deployer.policy(account.values()))
        assert done.returncode != 0, f"{row} removed, yet status and a redeploy passed"
        assert any(action in done.stderr for action in actions), done.stderr[-2000:]

    def test_10_destroy(self, account: Account) -> None:
        """The deployer removes the components, artifacts and images (`--keep-infrastructure`: the table's part of
        destroy); the owner's `make destroy` then the infrastructure. Both with the account's id."""
        make = account.as_deployer()
        done = subprocess.run(
            [sys.executable, "-m", "scripts", "destroy", "--target", "aws", "--keep-infrastructure",
             "--confirm", account.id],
            cwd=make.repo, env=make.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        passed(done)
        assert {"greengrass:DeleteComponent", "s3:DeleteObjectVersion", "ecr:ListImages"} <= account.allowed("deployer")
        make = account.as_owner()
        failed(make.readme("make destroy TARGET=aws", CONFIRM="999999999999"))
        passed(make.readme("make destroy TARGET=aws", CONFIRM=account.id))
        assert account.client("greengrassv2").list_components(scope="PRIVATE")["components"] == []
