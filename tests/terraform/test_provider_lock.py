"""The provider Terraform runs with the account's keys is the release HashiCorp signed, wherever it comes from.

Each root commits its dependency lock: `terraform init` installs a provider package only if it matches one of the
recorded checksums, `zh:` for a release archive and `h1:` for an unpacked package such as a filesystem mirror's
(Terraform's "Dependency Lock File" page, "Checksum verification"). The `zh:` set is the SHA256SUMS of the 5.100.0
release, every platform's archive (arm64 included); the `h1:` one is linux_amd64's, which this machine's mirror
reproduces (`terraform providers lock -fs-mirror=... -platform=linux_amd64`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, Run

ROOT = REPO / "terraform"
ROOTS = [ROOT, ROOT / "state"]  # the configurations Terraform is run in; modules are not roots
LOCK = ".terraform.lock.hcl"
PROVIDER = "registry.terraform.io/hashicorp/aws"
VERSION = "5.100.0"


def recorded(lock: str) -> tuple[str, set[str]]:
    """The locked version of hashicorp/aws and its checksums."""
    block = re.search(rf'provider "{re.escape(PROVIDER)}" \{{(.*?)\n\}}', lock, re.DOTALL)
    assert block is not None, f"no {PROVIDER} in the lock"
    version = re.search(r'version\s+=\s+"([^"]+)"', block.group(1))
    assert version is not None
    return version.group(1), set(re.findall(r'"((?:h1|zh):[^"]+)"', block.group(1)))


def test_every_root_commits_one_lock_with_every_platforms_release_checksums() -> None:
    locks = {folder.name: (folder / LOCK).read_text() for folder in ROOTS}
    assert len(set(locks.values())) == 1, "the roots lock different providers"
    version, hashes = recorded(next(iter(locks.values())))
    assert version == VERSION
    archives = {h for h in hashes if h.startswith("zh:")}
    assert len(archives) == 15  # one per archive in the release's SHA256SUMS: darwin, freebsd, linux, ... windows
    assert all(re.fullmatch(r"zh:[0-9a-f]{64}", h) for h in archives)
    assert {h for h in hashes if h.startswith("h1:")}, "no unpacked-package checksum: a mirror could serve anything"
    ignored = (REPO / ".gitignore").read_text()
    assert f"\n{LOCK}\n" not in f"\n{ignored}", "the lock files are ignored by git"


def test_the_lock_keeps_the_constraint_of_versions_tf() -> None:
    """Terraform records the constraint with every version padded to three parts (">= 5.40" is ">= 5.40.0")."""
    for folder in ROOTS:
        declared = re.search(
            r'source\s+=\s+"hashicorp/aws"\s+version\s+=\s+"([^"]+)"', (folder / "versions.tf").read_text()
        )
        assert declared is not None
        terms = re.findall(r"([<>=!~]+)\s*([\d.]+)", declared.group(1))
        padded = ", ".join(f"{op} {'.'.join([*v.split('.'), '0', '0'][:3])}" for op, v in terms)
        assert f'constraints = "{padded}"' in (folder / LOCK).read_text(), (
            f"{folder.name}: the lock's constraint is stale"
        )


@pytest.mark.slow
def test_init_from_this_machines_mirror_leaves_the_lock_as_committed(terraform: Run, tmp_path: Path) -> None:
    """The mirror's unpacked package matches the recorded h1: nothing added, nothing changed (-lockfile=readonly)."""
    copy = tmp_path / "terraform"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    done = terraform("init", "-backend=false", "-input=false", "-lockfile=readonly", "-no-color", cwd=copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (copy / LOCK).read_text() == (ROOT / LOCK).read_text()


@pytest.mark.slow
def test_a_mirror_that_serves_another_binary_under_the_release_name_is_refused(terraform: Run, tmp_path: Path) -> None:
    """An attacker who can write a mirror (or a TF_PROVIDER_MIRROR pointed at the wrong folder) puts a program named
    terraform-provider-aws_v5.100.0_x5 there; init refuses to install it and the lock is not rewritten to trust it."""
    package = tmp_path / "mirror" / PROVIDER / VERSION / "linux_amd64"
    package.mkdir(parents=True)
    binary = package / f"terraform-provider-aws_v{VERSION}_x5"
    binary.write_text("#!/bin/sh\necho 'this runs with your AWS keys' >&2\n")
    binary.chmod(0o755)
    config = tmp_path / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{tmp_path / "mirror"}"\n    include = ["{PROVIDER}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
        "}\n"
    )
    copy = tmp_path / "terraform"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    # Terraform itself, not scripts/terraform.sh: the wrapper would put back this machine's own mirror.
    done = subprocess.run(
        ["terraform", f"-chdir={copy}", "init", "-backend=false", "-input=false", "-no-color"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1"},
    )
    assert done.returncode != 0, done.stdout
    assert "doesn't match any of the checksums previously recorded in the dependency lock file" in " ".join(
        done.stderr.split()
    ), done.stderr
    assert (copy / LOCK).read_text() == (ROOT / LOCK).read_text()
    assert not list((copy / ".terraform").rglob("*_x5")), "the binary was installed"
