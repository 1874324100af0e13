"""Which recipe manifest fits a platform, and the lifecycle it selects, by the rules of the nucleus's recipe
model (component-common's PlatformHelper): the first manifest whose every `Platform` field accepts the device's
label wins.

A field's template accepts a label when it is: a list of alternatives (any one), `null` (the label is absent),
`*` or `//` (any label), `/regex/` (the whole label matches), `all`/`any` for `os` and `architecture` (any), or
the label itself. A manifest without a `Platform` fits every device.
"""

from __future__ import annotations

import platform as host
import re
from collections.abc import Mapping, Sequence
from typing import Any

from recipeformat.document import LIFECYCLE, STEP

LIFECYCLE_KEYS = frozenset(LIFECYCLE) | frozenset(STEP)

# The nucleus's architecture names for what the kernel reports (PlatformResolver.getArchInfo).
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i686": "x86", "x86": "x86", "aarch64": "aarch64"}
WILDCARD_FIELDS = ("os", "architecture")
# The OCI platform a Docker engine on such a device pulls and runs by default: what its `docker pull` selects
# from a multi-platform index.
_OCI_ARCHITECTURES = {"amd64": "amd64", "aarch64": "arm64", "arm": "arm/v7", "x86": "386"}


def architecture_of(machine: str) -> str:
    name = machine.lower()
    if name in _ARCHITECTURES:
        return _ARCHITECTURES[name]
    return "arm" if name.startswith("arm") else name


RUNTIME = "aws_nucleus_classic"  # the Java nucleus (GetCoreDevice's `runtime`; nucleus lite is aws_nucleus_lite)


def this_device() -> dict[str, str]:
    """The platform a core on this machine matches manifests against and resolves components for: `os` and
    `architecture` in the nucleus's names, and the nucleus's `runtime` (PlatformResolver), so that a manifest's
    `runtime: "*"` fits it as it fits a classic nucleus."""
    return {"os": "linux", "architecture": architecture_of(host.machine()), "runtime": RUNTIME}


def oci_platform(platform: Mapping[str, str]) -> str | None:
    """`linux/arm64` and the like for a device platform; None for a CPU no image index names."""
    architecture = _OCI_ARCHITECTURES.get(platform.get("architecture", ""))
    return f"{platform.get('os', 'linux')}/{architecture}" if architecture else None


def describe(platform: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(platform.items()))


def _accepts(field: str, label: str | None, template: Any) -> bool:
    if isinstance(template, list):
        return any(_accepts_one(field, label, alternative) for alternative in template)
    return _accepts_one(field, label, template)


def _accepts_one(field: str, label: str | None, template: Any) -> bool:
    if template is None:
        return label is None
    if label is None or not isinstance(template, str):
        return False
    if template in ("*", "//"):
        return True
    if len(template) > 2 and template.startswith("/") and template.endswith("/"):
        try:
            return re.fullmatch(template[1:-1], label) is not None
        except re.error:
            return False
    if field in WILDCARD_FIELDS and template in ("all", "any"):
        return True
    return template == label


def fits(manifest_platform: Mapping[str, Any] | None, platform: Mapping[str, str]) -> bool:
    if not manifest_platform:
        return True
    return all(_accepts(field, platform.get(field), template) for field, template in manifest_platform.items())


def best_manifest(manifests: Sequence[Mapping[str, Any]], platform: Mapping[str, str]) -> Mapping[str, Any] | None:
    """The first manifest that fits, or None (manifests as recipeformat.document.normalize leaves them)."""
    for manifest in manifests:
        raw = manifest.get("Platform")
        if fits(raw if isinstance(raw, Mapping) else None, platform):
            return manifest
    return None


def _selected(node: Any, selections: Sequence[str]) -> Any:
    """A global lifecycle with its selection keys resolved: at a level made only of keys that are not lifecycle
    keys, the first of the manifest's selections found there (then `all`) is taken; nothing when none is."""
    if not isinstance(node, Mapping):
        return node
    known = {key for key in node if str(key).lower() in LIFECYCLE_KEYS}
    if node and not known:
        by_name = {str(key).lower(): value for key, value in node.items()}
        for selection in [*selections, "all"]:
            if selection.lower() in by_name:
                return _selected(by_name[selection.lower()], selections)
        return None
    return {key: chosen for key, value in node.items() if (chosen := _selected(value, selections)) is not None}


def manifest_lifecycle(document: Mapping[str, Any], manifest: Mapping[str, Any]) -> Any:
    """A manifest's own Lifecycle, or the recipe's global one resolved with the manifest's Selections."""
    if manifest.get("Lifecycle"):
        return manifest["Lifecycle"]
    selections = [str(s) for s in manifest.get("Selections") or []]
    return _selected(document.get("Lifecycle") or {}, selections) or {}
