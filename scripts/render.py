"""What a person reads: the live view of a rollout, and at the end of a command a few lines that say what happened,
rendered from the same result the `--json` document carries in full. The command line (scripts/cli.py) prints
these; progress lines came before them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from scripts.fleet import releases
from scripts.fleet import rollout as rollouts

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
    unjoined = fleet.get("not_joined") or []
    waiting = (
        f"; {len(unjoined)} of the group's things never joined ({', '.join(unjoined[:5])}"
        f"{', ...' if len(unjoined) > 5 else ''}): `make device THING=<name>` prints how one joins"
        if unjoined
        else ""
    )
    return f"{fleet['devices']} device(s): {shown or 'none reached'}{waiting}"


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


def device_table(records: list[dict[str, Any]]) -> Table:
    """The per-device view, from `releases.device_record`s: the live table of `deploy` and the output of `status`."""
    table = Table(title="core devices", expand=False)
    for column in ("device", "health", "deployment", "components", "reason"):
        table.add_column(column)
    for record in records:
        states = ", ".join(
            f"{name.rsplit('.', 1)[-1]} {c['version']} {c['state']}" for name, c in sorted(record["components"].items())
        )
        table.add_row(
            record["thing"], record["health"], record["deployment_status"] or "waiting", states or "-", record["reason"]
        )
    return table


BAR_WIDTH = 40


def _fleet_summary(view: rollouts.FleetView) -> Group:
    """A large group's live view: a progress bar over the group, the counts, and the first failures."""
    done = view.notified - view.active
    share = min(1.0, done / view.expected) if view.expected else 0.0
    filled = round(BAR_WIDTH * share)
    bar = Text.assemble(("━" * filled, "green"), ("━" * (BAR_WIDTH - filled), "grey37"), f" {share:.0%} finished")
    lines: list[Any] = [Text(f"deployment {view.deployment_id}: job {view.job_status}"), bar, Text(view.summary())]
    if view.comment:
        lines.append(Text(view.comment, style="bold red"))
    if view.failures:
        table = Table(title=f"first failures ({view.failed} in all)", expand=False)
        for column in ("device", "deployment", "reason"):
            table.add_column(column)
        for device in view.failures:
            table.add_row(device.thing, device.execution or "-", device.reason or "(not read yet)")
        lines.append(table)
    return Group(*lines)


class LiveRollout:
    """The rollout, redrawn at every poll: the per-device table for a small group, a summary for a large one;
    nothing at all when no deployment is made."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console()
        self.live: Live | None = None

    def update(self, view: rollouts.FleetView) -> None:
        if not self.enabled:
            return
        shown: Any = (
            device_table([releases.device_record(d) for d in view.devices])
            if view.expected <= rollouts.SMALL_GROUP
            else _fleet_summary(view)
        )
        if self.live is None:
            self.live = Live(shown, console=self.console, auto_refresh=False)
            self.live.start()
        self.live.update(shown, refresh=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            if not self.console.is_terminal:
                self.console.line()  # a redirected Live leaves the cursor after its last frame


def listing(result: Result, indent: str = "") -> list[str]:
    """One `key: value` line each; nested mappings and lists indented below their key."""
    lines = []
    for key, value in result.items():
        if isinstance(value, dict) and value:
            lines += [f"{indent}{key}:", *listing(value, indent + "  ")]
        elif isinstance(value, list) and value:
            lines += [f"{indent}{key}:", *(f"{indent}  - {item}" for item in value)]
        else:
            lines.append(f"{indent}{key}: {value}")
    return lines


def log_line(thing: str, component: str, text: str) -> str:
    return f"{thing} {component}: {text}"


def log_line_printer(as_json: bool) -> Callable[[Any], None]:
    """How `make logs FOLLOW=1` prints a line the moment it is read: as text, or one JSON object a line."""
    if as_json:
        return lambda line: print(json.dumps({"thing": line.thing, "component": line.component, "line": line.text}),
                                  flush=True)  # fmt: skip
    return lambda line: print(log_line(line.thing, line.component, line.text), flush=True)


def logs(result: Result) -> list[str]:
    """Each line with its device and component; nothing more when they were printed as they came."""
    if result["followed"]:
        return []
    shown = [log_line(each["thing"], each["component"], each["line"]) for each in result["lines"]]
    return shown or ["no log lines in that span (SINCE=1h reaches further back)"]


def monitor(result: Result) -> list[str]:
    """At most 25 lines whatever the fleet's size: the group, the worst drifting devices with their features, the
    slowest and the most dropping, what could not be read, where the report is."""
    group = result["group"]
    lines = [
        f"telemetry, last {result['since']}: {group['devices']} devices, {group['windows']} windows, "
        f"{group['messages']} messages ({group['messages_per_s']}/s), {group['dropped']} dropped, "
        f"p50 {group['p50_ms']} ms, p99 {group['p99_ms']} ms",
    ]
    if group["without_reference"]:
        lines.append(f"no reference: {group['without_reference']} devices' windows carry no profile (not judged)")
    devices = {d["device"]: d for d in result["devices"]}
    drifting = [devices[name] for name in result["drifting"]]
    threshold = result["thresholds"]["significant"]
    lines.append(f"drifting: {len(drifting)} of {group['judged']} judged devices (a feature's PSI over {threshold})")
    for device in drifting[:8]:
        named = ", ".join(f"{f} {device['psi'][f]:.2f}" for f in device["drifting"][:4])
        lines.append(f"  {device['device']:<28} {named}")
    if len(drifting) > 8:
        lines.append(f"  ... and {len(drifting) - 8} more (--json, or the report)")
    answered = [d for d in result["devices"] if d["p99_ms"] is not None]
    if answered:
        lines.append(
            "slowest (p99): "
            + ", ".join(f"{d['device']} {d['p99_ms']} ms" for d in sorted(answered, key=lambda d: -d["p99_ms"])[:3])
        )
    losing = [d for d in result["devices"] if d["lost_windows"]]
    if losing:
        lines.append(
            f"windows lost on the way: {group['lost_windows']} ("
            + ", ".join(
                f"{d['device']} {d['lost_windows']}" for d in sorted(losing, key=lambda d: -d["lost_windows"])[:3]
            )
            + ")"
        )
    dropping = [d for d in result["devices"] if d["dropped"]]
    if dropping:
        lines.append(
            "most dropped: "
            + ", ".join(f"{d['device']} {d['dropped']}" for d in sorted(dropping, key=lambda d: -d["dropped"])[:3])
        )
    problems = []
    if result["unreadable_objects"]:
        problems.append(f"{len(result['unreadable_objects'])} unreadable objects ({result['unreadable_objects'][0]})")
    if result["bad_lines"]:
        problems.append(f"{result['bad_lines']} lines that are not windows")
    if result["unknown_profiles"]:
        problems.append(
            f"windows of {len(result['unknown_profiles'])} unknown profiles ({result['unknown_profiles'][0][:12]})"
        )
    if problems:
        lines.append("left out: " + "; ".join(problems))
    lines.append(f"report: {result['report']}")
    return lines[:25]


def status(result: Result) -> list[str]:
    """The device table (every device of a small group, the failing ones of a large one, whose counts are in
    `fleet`), then the rest."""
    console = Console()
    with console.capture() as table:
        console.print(device_table(result["devices"]))
    rest = {key: value for key, value in result.items() if key != "devices" and not (key == "fleet" and value is None)}
    return [table.get().rstrip("\n"), *listing(rest)]
