"""Terraform for the cloud side: `plan` against the local AWS stand-in (moto) by default, or a real account.

Terraform runs through scripts/terraform.sh (the offline provider mirror where there is one) and always under a
timeout: a provider that retries forever must not hang a pipeline.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.engine import Progress

REPO = Path(__file__).resolve().parent.parent
TERRAFORM = REPO / "scripts" / "terraform.sh"
WORKDIR = REPO / "terraform"
TIMEOUT = 900
LOCAL_REGION = "eu-west-1"


class InfraError(RuntimeError):
    pass


@contextmanager
def local_aws() -> Iterator[dict[str, str]]:
    """moto as a real HTTP endpoint on a free loopback port, and the environment that points Terraform at it."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
        }
    finally:
        server.stop()


def terraform(args: list[str], env: dict[str, str], progress: Progress, timeout: float = TIMEOUT) -> int:
    cmd = [str(TERRAFORM), f"-chdir={WORKDIR}", *args]
    progress(f"$ terraform {' '.join(args)}")
    try:
        done = subprocess.run(cmd, env={**os.environ, **env, "TF_IN_AUTOMATION": "1"}, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise InfraError(f"terraform {args[0]} did not finish within {timeout:.0f}s") from None
    return done.returncode


def plan(target: str, progress: Progress) -> dict[str, object]:
    """Exit codes of `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error."""
    extra = ["-var", f"region={LOCAL_REGION}", "-var", "s3_use_path_style=true"] if target == "local" else []

    def run(env: dict[str, str]) -> int:
        if terraform(["init", "-backend=false", "-input=false"], env, progress) != 0:
            raise InfraError("terraform init failed (see above)")
        code = terraform(["plan", "-input=false", "-lock=false", "-detailed-exitcode", *extra], env, progress)
        if code == 1:
            raise InfraError("terraform plan failed (see above)")
        return code

    if target == "local":
        with local_aws() as env:
            code = run(env)
    else:
        code = run({})
    return {"target": target, "changes": code == 2}


def destroy(progress: Progress) -> None:
    """`terraform destroy` of the applied stack in terraform/, with the normal AWS credential chain."""
    if terraform(["destroy", "-auto-approve", "-input=false"], {}, progress) != 0:
        raise InfraError("terraform destroy failed (see above); the stack may be partly deleted: run it again")
