"""`make monitor`: the group's telemetry of a time range, fetched, merged, judged against the reference profile, and
reported (one record for the terminal and `--json`, one HTML file). Reads the account, changes nothing in it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from scripts import tfoutputs
from scripts.aws import calling, error_code
from scripts.monitoring import drift, queries, report, windows


@dataclass(frozen=True)
class Monitored:
    since: str
    thing: str
    fetched: windows.Fetched
    assessment: drift.Assessment
    report: Path

    def record(self) -> dict[str, Any]:
        fetched = self.fetched
        return {
            "since": self.since,
            "thing": self.thing or None,
            "objects": fetched.objects,
            "windows": fetched.windows,
            "unreadable_objects": fetched.unreadable,
            "bad_lines": fetched.bad_lines,
            **self.assessment.record(),
            "report": str(self.report),
        }


def parse_since(text: str) -> timedelta:
    """`90m`, `1h`, `2d`."""
    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        amount, unit = float(text[:-1]), units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"--since {text!r}: a number and m, h or d (e.g. 90m, 1h, 2d)") from None
    if amount <= 0:
        raise ValueError(f"--since {text!r} must be positive")
    return timedelta(seconds=amount * unit)


def references(s3: Any, outputs: tfoutputs.Outputs, profiles: set[str]) -> dict[str, drift.Reference]:
    """Each profile the windows name, from the model component's artifacts (stored under their SHA-256)."""
    found = {}
    for sha in profiles:
        key = f"{outputs.artifact_prefix}/{outputs.components.model}/{sha}/profile-{sha[:12]}.json"
        try:
            body = s3.get_object(Bucket=outputs.artifact_bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                continue  # reported as an unknown profile
            with calling(f"read s3://{outputs.artifact_bucket}/{key} (s3:GetObject)"):
                raise
        try:
            found[sha] = drift.Reference.of(sha, json.loads(body))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def monitor(s3: Any, outputs: tfoutputs.Outputs, since: str, thing: str, folder: Path) -> Monitored:
    span = parse_since(since)
    fetched = windows.fetch(
        s3, outputs.artifact_bucket, f"{outputs.telemetry_object_prefix}/windows", span, folder / "windows"
    )
    merged = queries.run(folder / "windows" / outputs.telemetry_object_prefix, thing)
    profiles = {p for row in merged.devices for p in row["profiles"] or [] if p}
    held = references(s3, outputs, profiles)
    assessment = drift.assess(merged, held)
    reference = next(iter(held.values()), None)
    title = f"Telemetry of {outputs.thing_group_name}, the last {since}" + (f", {thing}" if thing else "")
    written = report.write(folder / "report.html", assessment, merged, reference, title)
    return Monitored(since, thing, fetched, assessment, written)
