"""`make` as a user runs it, in a copy of the checkout with a stack of its own, and what the tests read back of
that stack: the components the core device runs, their versions in the control plane, the subscriber's container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
import docker

from localcloud.info import StackInfo
from scripts.cloud import tfstate
from scripts.local import sandbox
from tests.conftest import REPO
from tests.support import checkout, images

PREDICTION = "[6.573914 4.869721]"  # the reference model on the first seed sample


class Make:
    """`make` in a copy of the checkout, for a stack of the test's own: its Terraform `name_prefix` names its thing
    group, role alias and components, so its containers and the user's never meet on the machine's engine."""

    def __init__(self, repo: Path, model: Path) -> None:
        self.repo, self.model = repo, model
        self.prefix = checkout.name_prefix()
        self.names = checkout.components(self.prefix)

    @property
    def env(self) -> dict[str, str]:
        # Telemetry at a test's pace: a window every 10 s, and Firehose writing what it holds every minute (its least).
        return {
            **os.environ,
            "TERM": "dumb",
            "TF_VAR_name_prefix": self.prefix,
            "TF_VAR_telemetry_window_seconds": "10",
            "TF_VAR_telemetry_buffer_seconds": "60",
        }

    def _command(self, target: str, variables: dict[str, str]) -> list[str]:
        overrides = {
            # The checkout's environments serve the copy: nothing is installed again.
            "VENV": str(REPO / ".venv"),
            "VENV_STAMP": str(REPO / ".venv" / ".installed"),
            "DEPS": "",  # the copy's files are newer than the stamp: never reinstall this checkout's environment
            "MODEL_PATH": str(self.model),
            **variables,
        }
        return ["make", "-C", str(self.repo), target, *(f"{k}={v}" for k, v in overrides.items())]

    def __call__(self, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self._command(target, variables), capture_output=True, text=True, timeout=900, env=self.env, check=False
        )
        print(done.stdout[-6000:], done.stderr[-3000:])  # shown by pytest when a test fails
        return done

    def start(self, target: str, **variables: str) -> Job:
        """`make TARGET` in the background, as a terminal's job: in a process group of its own."""
        return Job(self._command(target, variables), self.env)

    @property
    def root(self) -> Path:
        return self.repo / "build" / "local"

    def cloud(self) -> StackInfo:
        info = sandbox.find(self.root)
        assert info is not None, "the local cloud is not running"
        return info

    def client(self, service: str) -> Any:
        info = self.cloud()
        endpoint = info.greengrassv2 if service == "greengrassv2" else info.aws
        return boto3.client(
            service,
            region_name=info.region,
            endpoint_url=endpoint,
            aws_access_key_id=info.access_key_id,
            aws_secret_access_key=info.secret_access_key,
        )

    def state_bucket(self) -> tfstate.Bucket:
        """Where the stack's Terraform state is: the bucket terraform/state made in the local cloud."""
        bucket = tfstate.bootstrapped(self.root / "state" / "terraform.tfstate")
        assert bucket is not None, "terraform/state was not applied in the local cloud"
        return bucket

    def stop(self) -> None:
        """Its local cloud stopped and its folder gone, and the names its core's pulls gave images forgotten."""
        sandbox.stop(lambda message: None, self.root)
        images.forget_stack(self.prefix)

    def state(self) -> dict[str, Any]:
        """The stack's Terraform state, as the S3 backend keeps it."""
        where = self.state_bucket()
        state: dict[str, Any] = json.loads(
            self.client("s3").get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
        )
        return state


class Job:
    """A command running in a process group of its own, its output read as it comes, so a test can wait for a step
    and then do to it what a terminal's Ctrl-C does (SIGINT to the whole group)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        # SIGINT as a terminal's foreground job gets it, even when these tests run in a background job (which
        # inherits SIGINT ignored, and so would make and the tooling).
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        lines.extend(iter(stream.readline, ""))

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.stdout + self.stderr)

    def interrupt(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        returncode = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        done = subprocess.CompletedProcess(self.process.args, returncode, "".join(self.stdout), "".join(self.stderr))
        print(done.stdout[-6000:], done.stderr[-3000:])
        return done


def versions(make: Make, name: str) -> list[str]:
    gg = make.client("greengrassv2")
    arn = f"arn:aws:greengrass:{make.cloud().region}:{make.cloud().account}:components:{name}"
    return sorted(v["componentVersion"] for v in gg.list_component_versions(arn=arn)["componentVersions"])


NUCLEUS = ("aws.greengrass.Nucleus", ("2.14.0", "RUNNING"))  # a core lists itself among its components


def installed(make: Make) -> dict[str, tuple[str, str]]:
    gg = make.client("greengrassv2")
    components = gg.list_installed_components(coreDeviceThingName=make.cloud().thing)["installedComponents"]
    return {c["componentName"]: (c["componentVersion"], c["lifecycleState"]) for c in components}


def started_at(make: Make, client: docker.DockerClient) -> str:
    started: str = client.containers.get(make.names.subscriber).attrs["State"]["StartedAt"]
    return started


def scripts_json(make: Make, command: str, *args: str) -> dict[str, Any]:
    """`python -m scripts COMMAND --json` in the copy, as a program would run it: stdout must be one JSON document."""
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "scripts", command, "--json", *args],
        cwd=make.repo,
        capture_output=True,
        text=True,
        timeout=900,
        env=make.env,
        check=False,
    )
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)  # nothing else may be on stdout
    assert (document.get("schema"), document.get("kind")) == (1, command), "the --json envelope"
    return document


def stack_in_a_copy(folder: Path, model: Path) -> Iterator[Make]:
    """A module fixture's body: a Make in a copy under `folder`; whatever happened, nothing is left running."""
    runner = Make(checkout.checkout_copy(folder), model)
    yield runner
    runner.stop()
