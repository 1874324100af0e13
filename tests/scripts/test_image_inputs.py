"""The image's tag is the digest of what it is built from: a model or recipe change builds nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.building import image
from scripts.platforms import PLATFORMS

BOTH = tuple(PLATFORMS.values())


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "subscriber"
    shutil.copytree(image.CONTEXT, copy, ignore=shutil.ignore_patterns("wheelhouse", "__pycache__", "*.egg-info"))
    monkeypatch.setattr(image, "CONTEXT", copy)
    return copy


@pytest.mark.parametrize("changed", ["Dockerfile", "requirements.txt", "subscriber/app.py"])
def test_what_the_dockerfile_copies_changes_the_digest(context: Path, changed: str) -> None:
    before = image.inputs_digest(BOTH)
    (context / changed).write_text((context / changed).read_text() + "\n# changed\n")
    assert image.inputs_digest(BOTH) != before


def test_what_it_does_not_copy_leaves_the_digest_alone(context: Path) -> None:
    before = image.inputs_digest(BOTH)
    for uncopied in ("recipe.yaml", "pyproject.toml"):  # the image installs requirements.txt, not the project
        (context / uncopied).write_text((context / uncopied).read_text() + "\n# changed\n")
    (context / "subscriber" / "__pycache__").mkdir(exist_ok=True)
    (context / "subscriber" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"bytecode")
    assert image.inputs_digest(BOTH) == before
    assert image.inputs_digest(BOTH[:1]) != before  # another set of platforms is another index
