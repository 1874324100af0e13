"""The command line: help that teaches, exit codes that mean something, one clear line instead of a traceback."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from scripts import arguments, cli, isolation, render
from scripts.errors import ExitStatus, ToolError
from scripts.records import Recorded
from tests.conftest import REPO, TEST_IMAGES
from tests.support.outputs import stack_outputs

# A user of an account whose settings are plain keys: none of the test's shell's AWS settings.
ACCOUNT_USER = isolation.environment(
    {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example", "AWS_CONFIG_FILE": os.devnull,
     "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
)  # fmt: skip


def run(*args: str, env: dict[str, str] = ACCOUNT_USER) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
        check=False,
    )  # fmt: skip


def test_help_lists_every_command() -> None:
    done = run("--help")
    assert done.returncode == 0
    for name in cli.COMMANDS:
        assert name in done.stdout


def test_a_wrong_command_line_exits_2() -> None:
    assert run("nope").returncode == 2


def saved_outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    values = asdict(
        stack_outputs("eu-west-1", "123456789012", "r.example/edgeml/subscriber", "b", "arn:x/edgeml-cores")
    )
    path.write_text(json.dumps({name: {"value": value} for name, value in values.items()}))
    return path


def test_an_outputs_file_cannot_drive_a_terraform_destroy(tmp_path: Path) -> None:
    """A saved outputs file names no Terraform state: destroying the infrastructure needs the applied folder."""
    done = run("destroy", "--outputs", str(saved_outputs(tmp_path)))
    assert done.returncode == 1
    assert "names no Terraform state to destroy: use --terraform-dir" in done.stderr


def test_a_real_account_is_not_destroyed_without_its_account_id(tmp_path: Path) -> None:
    """TARGET=aws asks on the terminal; with no terminal and no --confirm, or a --confirm of another account,
    nothing is deleted (these runs make no AWS call: the refusal comes first)."""
    outputs = str(saved_outputs(tmp_path))
    unasked = run("destroy", "--outputs", outputs, "--keep-infrastructure")
    assert unasked.returncode == 1
    assert "pass --confirm 123456789012 (make destroy TARGET=aws CONFIRM=123456789012)" in unasked.stderr
    wrong = run("destroy", "--outputs", outputs, "--keep-infrastructure", "--confirm", "999999999999")
    assert wrong.returncode == 1
    assert "--confirm 999999999999 is not the stack's account (123456789012): nothing deleted" in wrong.stderr


def test_credentials_the_users_settings_name_but_cannot_give_are_one_error_line(tmp_path: Path) -> None:
    """A profile whose credential_process fails (an expired SSO session behind it, say): TARGET=aws says so in one
    line naming where to look, never a traceback."""
    config = tmp_path / "config"
    config.write_text("[profile sso-dev]\ncredential_process = /bin/false\n")
    shell = {**isolation.environment({}), "AWS_PROFILE": "sso-dev", "AWS_CONFIG_FILE": str(config)}
    done = run("status", "--outputs", str(saved_outputs(tmp_path)), env=shell)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and "credential_process" in done.stderr


def test_the_confirmation_is_the_account_id() -> None:
    assert arguments.approval("123456789012")("123456789012", "delete?")


@pytest.mark.parametrize("content", [None, "{}", "not json"])
def test_missing_outputs_are_one_clear_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)
    done = run("status", "--outputs", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    if content == "{}":
        assert "lacks the Terraform output(s) region, account_id" in done.stderr


def test_json_output_is_one_document(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"region": "eu-west-1"}))
    done = run("status", "--outputs", str(path), "--json")
    assert done.returncode == 1 and done.stdout == ""


@pytest.mark.docker
@pytest.mark.parametrize(
    ("command", "key"), [(["engine"], "base_image"), (["image", "--tag", f"{TEST_IMAGES}:test-json"], "size_mb")]
)
def test_json_output_of_engine_and_image_is_one_document(docker_client: object, command: list[str], key: str) -> None:
    """Progress goes to stderr, the document alone to stdout (deploy, plan, apply, status and destroy are parsed
    the same way against the local cloud in tests/scenarios/, demo in tests/localgg/test_demo.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts", *command, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    # The envelope (README "The --json document"), then the command's own keys.
    assert list(document)[:2] == ["schema", "kind"] and document["schema"] == cli.SCHEMA == 1
    assert document["kind"] == command[0] and key in document


def test_every_error_class_of_the_tooling_is_reported_without_a_traceback() -> None:
    """Each exception class defined in scripts/ derives from ToolError, the one the CLI turns into `error: ...`
    and exit 1."""
    declared = {}
    for module in (REPO / "scripts").rglob("*.py"):
        dotted = ".".join(module.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ClassDef):
                cls = getattr(importlib.import_module(dotted), node.name)
                if issubclass(cls, BaseException):
                    declared[node.name] = cls
    assert len(declared) >= 13  # one per module that can fail, and the base itself
    assert [name for name, cls in declared.items() if not issubclass(cls, ToolError)] == []


def test_ctrl_c_ends_with_a_clean_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in command that is interrupted (the KeyboardInterrupt Python raises on SIGINT), through the real
    funnel in `cli.main`."""

    def interrupted(args: object, progress: object) -> Recorded:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "plan", cli.Command("stand-in", interrupted, arguments.add_target))
    assert cli.main(["plan"]) == ExitStatus.INTERRUPTED
    err = capsys.readouterr().err
    assert err.startswith("interrupted: plan stopped") and "Traceback" not in err


def test_the_device_table_shows_each_device_and_its_components() -> None:
    from rich.console import Console

    record = {
        "thing": "core-1",
        "health": "HEALTHY",
        "deployment_status": None,
        "reason": "",
        "components": {
            "com.edgeml.WineQualitySubscriber": {"version": "1.0.1", "state": "BROKEN", "details": "exit 1"}
        },
    }
    console = Console(record=True, width=200)
    console.print(render.device_table([record]))
    text = console.export_text()
    assert "core-1" in text and "waiting" in text and "WineQualitySubscriber 1.0.1 BROKEN" in text
