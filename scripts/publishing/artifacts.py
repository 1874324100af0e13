"""The publisher's artifacts: one zip per device architecture, of its package and the wheels built for that
architecture, so the device installs nothing and never gets a native library it cannot load."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from scripts.aws import calling, error_code
from scripts.building import wheels
from scripts.platforms import BY_GREENGRASS
from scripts.product import REPO

PUBLISHER = REPO / "components" / "publisher"
ZIP_NAME = "publisher.zip"
# Fixed timestamps make the zip's bytes, and so its content address, depend on the content alone.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def publisher_zip(cache: Path, architecture: str) -> Path:
    """The publisher zip for `architecture`, built once per content: under `cache/<architecture>/<digest of the
    package's files and pins>/`, so an unchanged publisher costs no pip run."""
    digest = hashlib.sha256(architecture.encode())
    sources = [PUBLISHER / wheels.LOCK, *sorted((PUBLISHER / "publisher").rglob("*"))]
    for path in sources:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"\0{path.relative_to(PUBLISHER)}\0".encode() + path.read_bytes())
    folder = cache / architecture / digest.hexdigest()[:16]
    if (folder / ZIP_NAME).is_file():
        return folder / ZIP_NAME
    return build_publisher_zip(folder, architecture)


def build_publisher_zip(out_dir: Path, architecture: str) -> Path:
    """`out_dir/publisher.zip`: the `publisher` package plus its pinned dependencies' wheels for `architecture`."""
    platforms = wheels.platform_options(BY_GREENGRASS[architecture])
    with tempfile.TemporaryDirectory(prefix="edgeml-publisher-") as tmp:
        staging = Path(tmp)
        wheels.pip(
            "install",
            wheels.hashed(PUBLISHER),
            "--no-compile",
            "--target",
            str(staging),
            *platforms,
        )
        shutil.copytree(
            PUBLISHER / "publisher", staging / "publisher", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / ZIP_NAME
        partial = out_dir / f"{ZIP_NAME}.partial"  # renamed once whole: a cached zip is never a broken one
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(p for p in staging.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                    info = zipfile.ZipInfo(str(path.relative_to(staging)), _EPOCH)
                    info.external_attr = (path.stat().st_mode & 0o777) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes())
        except OSError as exc:
            partial.unlink(missing_ok=True)  # a full disk: the space given back, nothing half-written kept
            raise OSError(exc.errno, exc.strerror, str(partial)) from None  # zipfile's own names no file
        partial.replace(target)
    return target


@dataclass(frozen=True)
class Uploaded:
    uri: str
    created: bool  # False: the same bytes were already there, nothing was sent


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def upload(s3: Any, bucket: str, prefix: str, component: str, path: Path) -> Uploaded:
    """Store `path` at `<prefix>/<component>/<sha256>/<name>`: one key per content, so an unchanged artifact is
    never sent again and a recipe's URI always names exactly the bytes it was rendered with."""
    key = f"{prefix}/{component}/{sha256(path)}/{path.name}"
    # A HEAD's refusal has no body to name the permission: the action says it (s3:GetObject, and s3:ListBucket
    # for S3 to answer 404 rather than 403 for a key not there yet).
    with calling(f"check s3://{bucket}/{key} (s3:GetObject, s3:ListBucket)"):
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return Uploaded(f"s3://{bucket}/{key}", created=False)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
    # Artifacts are megabytes: one PUT, whose errors are plain ClientErrors (upload_file wraps them).
    with calling(f"upload {path.name} to s3://{bucket}/{key}"), path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return Uploaded(f"s3://{bucket}/{key}", created=True)
