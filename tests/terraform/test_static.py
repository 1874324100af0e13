"""fmt, validate against the real provider schema, `terraform test` with mock_provider, and checkov."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts.tfoutputs import REQUIRED_OUTPUTS
from tests.conftest import REPO, Run

pytestmark = pytest.mark.slow  # terraform validate and test, checkov: seconds each

ROOT = REPO / "terraform"
MODULES = sorted(p for p in (ROOT / "modules").iterdir() if p.is_dir())
STATE = ROOT / "state"  # the state bucket's bootstrap, a root of its own


def test_fmt(terraform: Run) -> None:
    done = terraform("fmt", "-check", "-recursive", cwd=ROOT)
    assert done.returncode == 0, f"not formatted: {done.stdout}{done.stderr}"


@pytest.mark.parametrize("folder", [ROOT, STATE, *MODULES], ids=lambda p: p.name)
def test_validate_and_terraform_test(terraform: Run, folder: Path) -> None:
    init = terraform("init", "-backend=false", "-input=false", cwd=folder)
    assert init.returncode == 0, init.stderr
    validate = terraform("validate", "-json", cwd=folder)
    assert json.loads(validate.stdout)["valid"], validate.stdout
    tests = terraform("test", "-no-color", cwd=folder)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"Success! [1-9]\d* passed, 0 failed", tests.stdout), tests.stdout


def test_checkov_finds_nothing_and_every_skip_says_why() -> None:
    checkov = REPO / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.skip("checkov's own environment is missing: run `make setup`")
    done = subprocess.run(
        [str(checkov), "-d", str(ROOT), "--framework", "terraform", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["passed"] > 20
    for check in report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


def test_every_output_the_scripts_read_is_declared_and_documented() -> None:
    declared = set(re.findall(r'^output "([^"]+)"', (ROOT / "outputs.tf").read_text(), re.MULTILINE))
    documented = (ROOT / "README.md").read_text()
    for name in REQUIRED_OUTPUTS:
        assert name in declared, f"terraform/outputs.tf lacks output {name}"
        assert f"`{name}`" in documented, f"terraform/README.md does not document output {name}"


def test_every_variable_is_typed_and_described() -> None:
    for folder in [ROOT, STATE, *MODULES]:
        text = (folder / "variables.tf").read_text()
        for block in re.split(r'^variable "', text, flags=re.MULTILINE)[1:]:
            name = block.split('"', 1)[0]
            assert "description" in block and "type" in block, f"{folder.name}: variable {name}"


def documented(readme: str, heading: str) -> set[str]:
    """The names in the first column of the table under the `## <heading>...` section of a README."""
    section = re.split(rf"^## {heading}.*$", readme, maxsplit=1, flags=re.MULTILINE)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.MULTILINE)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.MULTILINE))


@pytest.mark.parametrize("folder", [ROOT, STATE, *MODULES], ids=lambda folder: folder.name)
def test_each_readme_documents_exactly_its_inputs_and_outputs(folder: Path) -> None:
    """terraform-aws-modules' convention: a README of inputs and outputs. Checked against variables.tf and
    outputs.tf both ways, so a new variable or output without a row, or a row left for one removed, fails."""
    readme = (folder / "README.md").read_text()
    variables = set(re.findall(r'^variable "([^"]+)"', (folder / "variables.tf").read_text(), re.MULTILINE))
    outputs = set(re.findall(r'^output "([^"]+)"', (folder / "outputs.tf").read_text(), re.MULTILINE))
    assert documented(readme, "Inputs") == variables, f"{folder.name}/README.md Inputs"
    assert documented(readme, "Outputs") == outputs, f"{folder.name}/README.md Outputs"
