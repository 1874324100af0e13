"""An artifact's digest as Greengrass writes it into a recipe: the service computes it when a component version is
created (`Digest`, `Algorithm` on each artifact of the recipe it serves), and the nucleus checks every download
against it (ArtifactDownloader: the base64 of the SHA-256, ARTIFACT_CHECKSUM_MISMATCH when they differ)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from pathlib import Path

ALGORITHM = "SHA-256"
CHUNK = 1 << 20


def of_chunks(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def of_file(path: Path) -> str:
    with path.open("rb") as read:
        return of_chunks(iter(lambda: read.read(CHUNK), b""))
