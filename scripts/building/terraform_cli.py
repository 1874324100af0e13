"""Terraform itself, on a machine that lacks it: HashiCorp's release archive for this CPU, refused unless its SHA-256
is the one declared here, unpacked into a folder on the PATH.

The checksums are those of HashiCorp's SHA256SUMS for the release, the same in several independent public pins
(package recipes and lock scripts that name this version). Standard library only: `.ci/run` runs it before any
virtual environment exists, as `python3 -m scripts.building.terraform_cli ensure`. A machine that already has a
terraform on the PATH keeps it (versions.tf says which versions the project accepts).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from scripts.errors import ToolError
from scripts.progress import Progress

VERSION = "1.11.4"
SHA256 = {
    "linux_amd64": "1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc",
    "linux_arm64": "a43d1d0da9b9bab214a8305a39db0e40869572594ccf50c416a7756499143633",
}
RELEASES = "https://releases.hashicorp.com/terraform"
CPUS = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
MAX_ARCHIVE = 200 * 1024 * 1024  # the release is about 30 MB: anything far larger is not it


class TerraformMissing(ToolError):
    """Terraform is not on the PATH and could not be installed; the message names what to do."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def platform_name() -> str:
    cpu = CPUS.get(platform.machine().lower())
    if sys.platform != "linux" or cpu is None:
        raise TerraformMissing(f"no Terraform release is declared for {sys.platform}/{platform.machine()}")
    return f"linux_{cpu}"


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data: bytes = response.read(MAX_ARCHIVE + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise TerraformMissing(
            f"terraform is not on the PATH and {url} could not be fetched ({exc}). Install Terraform {VERSION} "
            "(https://developer.hashicorp.com/terraform/install) or set TERRAFORM_RELEASES_URL to a mirror"
        ) from exc
    if len(data) > MAX_ARCHIVE:
        raise TerraformMissing(f"{url} is larger than {MAX_ARCHIVE} bytes: not a Terraform release")
    return data


def install(folder: Path, releases: str = RELEASES, progress: Progress = _say) -> Path:
    """Terraform VERSION for this CPU in `folder`, its archive checked against SHA256 before anything is unpacked."""
    name = platform_name()
    url = f"{releases.rstrip('/')}/{VERSION}/terraform_{VERSION}_{name}.zip"
    progress(f"installing Terraform {VERSION} from {url}")
    archive = _download(url)
    digest = hashlib.sha256(archive).hexdigest()
    if digest != SHA256[name]:
        raise TerraformMissing(
            f"{url} has SHA-256 {digest}, not the {SHA256[name]} HashiCorp published for {VERSION} {name}: refused"
        )
    with zipfile.ZipFile(io.BytesIO(archive)) as unpacked:
        binary = unpacked.read("terraform")
    folder.mkdir(parents=True, exist_ok=True)
    # Written beside its place and renamed: a half-written terraform is never on the PATH.
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".terraform-", delete=False) as partial:
        partial.write(binary)
    os.chmod(partial.name, 0o755)
    target = folder / "terraform"
    os.replace(partial.name, target)
    return target


def ensure(folder: Path = Path("/usr/local/bin"), progress: Progress = _say) -> str:
    """The terraform on the PATH, installed into `folder` first where there is none."""
    found = shutil.which("terraform")
    if found:
        return found
    if not os.access(folder if folder.exists() else folder.parent, os.W_OK):
        raise TerraformMissing(
            f"terraform is not on the PATH and {folder} is not writable here: install Terraform {VERSION} "
            "(https://developer.hashicorp.com/terraform/install), or run this as root to have it installed"
        )
    return str(install(folder, os.environ.get("TERRAFORM_RELEASES_URL", RELEASES), progress))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m scripts.building.terraform_cli", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("action", choices=("ensure",), help="install Terraform where it is missing")
    parser.add_argument("--into", type=Path, default=Path("/usr/local/bin"), help="where (default /usr/local/bin)")
    args = parser.parse_args(argv)
    try:
        print(ensure(args.into))
    except TerraformMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
