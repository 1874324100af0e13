"""The stack's S3 backend in a moto endpoint of a test's own, set up as `make state` sets it up: terraform/state
applied (its own state in a folder of the test's), then the backend's settings written from its outputs. The Terraform
tests of the stack init with `-backend-config=<the file>`, the code path a team's `terraform init` takes."""

from __future__ import annotations

from pathlib import Path

from scripts.cloud import tfstate
from tests.conftest import REPO, Run


def bootstrap(terraform: Run, env: dict[str, str], folder: Path, name_prefix: str) -> tuple[Path, tfstate.Bucket]:
    """The state bucket made in the endpoint `env` names (AWS_ENDPOINT_URL), and the backend's settings file."""
    state = folder / "bootstrap.tfstate"
    own = {**env, "TF_DATA_DIR": str(folder / "bootstrap-data")}
    where = REPO / "terraform" / "state"
    init = terraform("init", "-input=false", f"-backend-config=path={state}", cwd=where, env=own)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr
    variables = (
        "-var",
        f"region={env['AWS_REGION']}",
        "-var",
        "s3_use_path_style=true",
        "-var",
        f"name_prefix={name_prefix}",
    )
    done = terraform("apply", "-auto-approve", "-input=false", "-no-color", *variables, cwd=where, env=own)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    bucket = tfstate.bootstrapped(state)
    assert bucket is not None, state.read_text()
    config = folder / tfstate.CONFIG
    config.write_text(tfstate.config_text(bucket, env["AWS_ENDPOINT_URL"]))
    return config, bucket
