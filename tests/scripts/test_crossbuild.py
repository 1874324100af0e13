"""The registry's credentials for buildah's push of a multi-platform index never reach a command line, where every
user of the machine reads them in the process list: they go in a containers-auth.json only this user can read."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

from scripts.building import crossbuild


def test_the_push_credentials_are_in_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    path = crossbuild.auth_file(tmp_path, "127.0.0.1:5000", ("AWS", "s3cret"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = json.loads(path.read_text())["auths"]["127.0.0.1:5000"]
    assert base64.b64decode(entry["auth"]).decode() == "AWS:s3cret"
