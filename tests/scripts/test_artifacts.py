"""The publisher artifact: built reproducibly, and uploaded to S3 (moto as a real endpoint) by content address."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import boto3
import pytest

from scripts import aws
from scripts.building import wheels
from scripts.platforms import BY_GREENGRASS
from scripts.publishing import artifacts
from tests.support import elf

pytestmark = pytest.mark.slow  # pip resolves wheels for each architecture


@pytest.fixture
def s3(moto_endpoint: str) -> object:
    client = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="art", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    yield client
    for item in client.list_objects_v2(Bucket="art").get("Contents", []):
        client.delete_object(Bucket="art", Key=item["Key"])
    client.delete_bucket(Bucket="art")


def test_the_zip_is_reproducible_and_carries_code_and_dependencies(tmp_path: Path) -> None:
    first = artifacts.build_publisher_zip(tmp_path / "a", "amd64")
    second = artifacts.build_publisher_zip(tmp_path / "b", "amd64")
    assert artifacts.sha256(first) == artifacts.sha256(second)
    names = zipfile.ZipFile(first).namelist()
    assert "publisher/app.py" in names and "publisher/samples.json" in names
    assert any(n.startswith("awsiot/") for n in names) and any(n.startswith("awscrt/") for n in names)
    assert not any("__pycache__" in n for n in names)


@pytest.mark.parametrize("architecture", sorted(BY_GREENGRASS))
def test_each_architecture_gets_its_own_native_library(tmp_path: Path, architecture: str) -> None:
    """awscrt's native module in each zip is built for that architecture's CPU (read from its ELF header), so a
    core loads only what it can run."""
    archive = zipfile.ZipFile(artifacts.build_publisher_zip(tmp_path, architecture))
    (library,) = [n for n in archive.namelist() if n.startswith("_awscrt") and n.endswith(".so")]
    assert elf.machine(archive.read(library)[:20]) == elf.MACHINE[architecture]


def test_upload_is_content_addressed_and_skips_what_is_there(s3: object, tmp_path: Path) -> None:
    path = tmp_path / "publisher.zip"
    path.write_bytes(b"one")
    first = artifacts.upload(s3, "art", "artifacts", "com.x.Pub", path)
    assert first.created
    assert first.uri == f"s3://art/artifacts/com.x.Pub/{artifacts.sha256(path)}/publisher.zip"
    again = artifacts.upload(s3, "art", "artifacts", "com.x.Pub", path)
    assert again == artifacts.Uploaded(first.uri, created=False)
    path.write_bytes(b"two")
    changed = artifacts.upload(s3, "art", "artifacts", "com.x.Pub", path)
    assert changed.created and changed.uri != first.uri


def test_a_missing_bucket_is_a_clear_error(s3: object, tmp_path: Path) -> None:
    path = tmp_path / "publisher.zip"
    path.write_bytes(b"x")
    with pytest.raises(aws.AwsError, match=r"publisher\.zip"):
        artifacts.upload(s3, "no-such-bucket", "artifacts", "com.x.Pub", path)


def test_the_zip_is_built_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deploy with an unchanged publisher runs no pip; a changed one gets a zip of its own."""
    source = tmp_path / "publisher-source"
    shutil.copytree(artifacts.PUBLISHER, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    monkeypatch.setattr(artifacts, "PUBLISHER", source)
    first = artifacts.publisher_zip(tmp_path / "cache", "amd64")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip ran for a publisher already built")

    monkeypatch.setattr(wheels, "pip", no_pip)
    assert artifacts.publisher_zip(tmp_path / "cache", "amd64") == first
    monkeypatch.undo()
    monkeypatch.setattr(artifacts, "PUBLISHER", source)
    (source / "publisher" / "app.py").write_text((source / "publisher" / "app.py").read_text() + "\n# changed\n")
    second = artifacts.publisher_zip(tmp_path / "cache", "amd64")
    assert second != first and second.is_file() and not list(second.parent.glob("*.partial"))
