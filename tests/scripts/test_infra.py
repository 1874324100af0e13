"""Terraform as the local cloud runs it: its own output in a log, one summary line on screen, and its own error
message in full when it fails. Real Terraform and the real AWS provider (from the offline mirror); the failure is
a variable validation, so no AWS endpoint is called."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.cloud import infra, plans, tfstate
from tests.conftest import REPO, Run


@pytest.mark.slow  # a real terraform init and plan
def test_a_failed_plan_shows_terraforms_own_error_and_the_log(terraform: Run, tmp_path: Path) -> None:
    log = tmp_path / "terraform.log"
    # The stack's configuration with its state on disk (as `make state-local` keeps it): no backend to reach.
    workdir = tmp_path / "terraform"
    shutil.copytree(REPO / "terraform", workdir, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    (workdir / tfstate.OVERRIDE).write_text(tfstate.OVERRIDE_TEXT)
    space = infra.Workspace(
        "local",
        {"TF_DATA_DIR": str(tmp_path / "data"), "AWS_REGION": "eu-west-1"},
        ("-var", "name_prefix=Not_Valid!"),
        log=log,
        workdir=workdir,
        local_state=tmp_path / "terraform.tfstate",
        plans=tmp_path / "plan",
    )
    said: list[str] = []
    with pytest.raises(infra.InfraError) as caught:
        plans.plan(space, said.append)
    message = str(caught.value)
    assert message.startswith(f"terraform plan failed (log: {log}):\nError: Invalid value for variable")
    assert "name_prefix must be 2-20 lower-case letters" in message  # terraform/variables.tf's own words
    # The init as it starts and as it ends, the plan as it starts; nothing of Terraform's own output.
    assert said[0] == "terraform init ..." and said[-1] == "terraform plan ..."
    assert any(re.fullmatch(rf"terraform init: done \(\d+ s; log: {re.escape(str(log))}\)", line) for line in said)
    assert all(line.startswith(("terraform ", "  ... terraform ")) for line in said), said  # heartbeats at most
    text = log.read_text()
    assert "$ terraform init" in text and "$ terraform plan" in text and "Terraform has been successfully" in text


def test_the_local_apply_runs_only_when_configuration_variables_or_state_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Terraform itself is stood in for (the skip decision is what is tested; the apply is tested above and in
    tests/scenarios): the sandbox is driven by this tooling alone, so an apply with nothing changed would change
    nothing."""
    workdir = tmp_path / "terraform"
    workdir.mkdir()
    (workdir / "main.tf").write_text('resource "x" "y" {}\n')
    (workdir / tfstate.OVERRIDE).write_text(tfstate.OVERRIDE_TEXT)  # a state file to change (S3's: tests/scenarios)
    state = tmp_path / "terraform.tfstate"
    space = infra.Workspace("local", {}, ("-var", "region=eu-west-1"), workdir=workdir, local_state=state)
    applied: list[str] = []

    def apply(space: infra.Workspace, progress: object) -> str:
        applied.append("apply")
        state.write_text(f"state after apply {len(applied)}")
        return "outputs"

    monkeypatch.setattr(infra, "apply", apply)
    monkeypatch.setattr(infra, "outputs", lambda space: "outputs")
    said: list[str] = []
    for _ in range(2):
        infra.apply_if_changed(space, said.append)
    assert applied == ["apply"] and "not applied again" in said[-1]
    (workdir / "main.tf").write_text('resource "x" "z" {}\n')
    infra.apply_if_changed(space, said.append)
    (tmp_path / "terraform.tfstate").write_text("someone applied or destroyed")
    infra.apply_if_changed(space, said.append)
    infra.apply_if_changed(space, said.append)
    assert applied == ["apply"] * 3


def test_terraform_past_its_timeout_is_interrupted_so_it_saves_its_state(tmp_path: Path) -> None:
    """SIGKILL would leave the state unwritten (resources outside it, AlreadyExists on the next apply) and a remote
    backend locked; SIGINT is how Terraform is told to stop: it finishes what is in flight, writes its state and
    releases the lock. A stand-in that handles SIGINT as Terraform does (no Terraform command runs long on purpose)."""
    saved, armed = tmp_path / "saved", tmp_path / "armed"
    stand_in = f"trap 'echo state > {saved}; exit 130' INT; touch {armed}; while :; do sleep 0.05; done"
    with (tmp_path / "log").open("w") as log, pytest.raises(subprocess.TimeoutExpired):
        # Long enough for a loaded machine to start the shell and set its trap before the timeout strikes.
        infra.interruptibly(["sh", "-c", stand_in], {"PATH": "/usr/bin:/bin"}, 5.0, log)
    assert armed.exists(), "the stand-in never set its trap: the timeout struck first"
    assert saved.read_text() == "state\n"
