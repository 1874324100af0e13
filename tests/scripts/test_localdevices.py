"""`LOCAL_DEVICES`: which core devices the local cloud runs, read as a user writes them."""

from __future__ import annotations

import pytest

from localcloud.cli import build_parser
from localcloud.emulated import Emulated
from scripts import targets
from scripts.local import localdevices
from scripts.platforms import PLATFORMS, this_machine


def test_cpus_are_read_by_docker_or_greengrass_name_in_order_without_repeats() -> None:
    here = this_machine()
    assert localdevices.parse("amd64,arm64") == [PLATFORMS["linux/amd64"], PLATFORMS["linux/arm64"]]
    assert localdevices.parse(f" arm64 , aarch64,{here.greengrass}") == [PLATFORMS["linux/arm64"], here]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("amd64,riscv64", "riscv64 is not one of"),
        ("arm64" if this_machine().greengrass == "amd64" else "amd64", "must include this machine's CPU"),
    ],
)
def test_a_list_the_local_cloud_cannot_run_is_refused_with_the_reason(text: str, words: str) -> None:
    with pytest.raises(localdevices.DevicesError, match=words):
        localdevices.parse(text)


def test_local_devices_belong_to_the_local_cloud_only() -> None:
    chosen = targets.chosen(None, local_devices="amd64,arm64")
    assert isinstance(chosen, targets.Local) and chosen.devices is not None
    assert targets.chosen("local") == targets.Local()  # whichever devices the running local cloud has
    with pytest.raises(targets.TargetError, match="for the local cloud"):
        targets.chosen("aws", local_devices="amd64,arm64")


def test_the_device_image_is_named_after_its_content() -> None:
    arm = PLATFORMS["linux/arm64"]
    assert localdevices.image_tag(arm) == localdevices.image_tag(arm)
    assert localdevices.image_tag(arm) != localdevices.image_tag(PLATFORMS["linux/amd64"])
    assert all("==" in requirement for requirement in localdevices.runtime_requirements())


def test_the_stack_takes_emulated_devices_as_platform_and_image() -> None:
    args = build_parser().parse_args(["stack", "--root", "x", "--emulated-device", "linux/arm64=img:1"])
    assert args.emulated_device == [Emulated("linux/arm64", "img:1")]
    assert args.emulated_device[0].architecture == "arm64"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stack", "--root", "x", "--emulated-device", "arm64"])
