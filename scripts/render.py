"""What a person reads at the end of a command: a few lines that say what happened, rendered from the same result
the `--json` document carries in full. The command line (scripts/cli.py) prints these; progress lines and the live
rollout view came before them."""

from __future__ import annotations

import json
from typing import Any

Result = dict[str, Any]


def _short(reference: str) -> str:
    """An image pinned by digest, with the digest cut to 12 hex digits."""
    name, _, digest = reference.partition("@sha256:")
    return f"{name}@sha256:{digest[:12]}" if digest else reference


def _fleet(fleet: Result | None) -> str:
    if not fleet:
        return ""
    counts = {status: count for status, count in fleet["executions"].items() if count}
    shown = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in counts.items())
    return f"{fleet['devices']} device(s): {shown or 'none reached'}"


def _model(role: str, stored: Result) -> str:
    measured = stored.get("metrics") or {}
    figures = f" (held-out RMSE {measured['rmse']}, MAE {measured['mae']})" if measured.get("rmse") is not None else ""
    return f"{role} {stored['sha256'][:12]}{figures}"


def rollout(result: Result) -> list[str]:
    """deploy, promote, rollback: the deployment (or why there was none), what changed, the image and models when
    the command published them, the devices, and a prediction from each (the local cloud)."""
    lines = []
    deployment = result.get("deployment")
    changes = result.get("changes") or []
    if deployment:
        fleet = _fleet(result.get("fleet"))
        lines.append(f"deployment {deployment}: " + (fleet or "created"))
    elif changes:
        lines.append("dry run: no deployment created")
    else:
        lines.append("nothing to change: the group already runs these versions")
    if changes:
        lines.append("  changes: " + ", ".join(changes))
    if "image" in result:
        lines.append(f"  image: {_short(result['image'])} ({'pushed' if result['image_pushed'] else 'already there'})")
    models = result.get("models") or {}
    held = [_model(role, models[role]) for role in ("champion", "challenger") if role in models]
    if held:
        lines.append("  models: " + "; ".join(held))
    for role in ("promoted", "retired"):
        if role in result:
            lines.append(f"  {_model(role, result[role])}")
    for thing, predictions in (result.get("predictions") or {}).items():
        lines.append(f"  prediction on {thing}: {predictions[-1]}")
    lines.append("  (the whole record: --json)")
    return lines


def joining(result: Result) -> list[str]:
    """device: the steps on the device, in order."""
    lines = [
        f"To join {result['thing']} to the stack, on the device:",
        f"  1. check it: {result['preflight']} (copy device/preflight.sh there; it says what to fix)",
        "  2. download and unzip the installer: curl -s https://d2s8p88vqu9w66.cloudfront.net/releases/"
        "greengrass-nucleus-latest.zip > gg.zip && unzip gg.zip -d GreengrassInstaller",
    ]
    step = 3
    for written, there in result["files"].items():
        lines.append(f"  {step}. put {written} at {there}")
        step += 1
    if result["iam_policy"] is not None:
        lines.append(f"  {step}. with AWS credentials allowed this (and no more) in the environment:")
        lines += ["       " + line for line in json.dumps(result["iam_policy"], indent=2).splitlines()]
        step += 1
    lines += [f"  {step}. run the installer:", f"     {result['command']}"]
    return lines
