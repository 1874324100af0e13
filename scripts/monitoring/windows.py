"""The delivered windows of a time range, from the account's S3 to a folder here, read-only.

Firehose writes gzip objects of JSON lines under `<telemetry prefix>/windows/year=/month=/day=/hour=/` by arrival
hour; only the hours asked for are listed. Each object is read here before the engine sees it: a line that is not
a window (not JSON, or without the keys every window has) is left out and counted, an object that is not gzip is
named, so one bad object costs its own lines and never the report. What was fetched once is not fetched again.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scripts.aws import calling

REQUIRED = ("device", "started", "seq", "start", "end", "messages", "records", "latency")


@dataclass
class Fetched:
    objects: int = 0
    windows: int = 0
    bad_lines: int = 0
    unreadable: list[str] = field(default_factory=list)  # object keys that are not gzip JSON lines


def hour_prefixes(windows_prefix: str, since: timedelta, now: datetime) -> list[str]:
    start = (now - since).replace(minute=0, second=0, microsecond=0)
    hours = int((now - start) / timedelta(hours=1)) + 1
    return [
        f"{windows_prefix}/{(start + timedelta(hours=h)).strftime('year=%Y/month=%m/day=%d/hour=%H')}/"
        for h in range(hours)
    ]


def fetch(
    s3: Any, bucket: str, windows_prefix: str, since: timedelta, folder: Path, now: datetime | None = None
) -> Fetched:
    """Every window delivered within `since` of now, checked, into `folder` (one cleaned object per object)."""
    fetched = Fetched()
    for prefix in hour_prefixes(windows_prefix, since, now or datetime.now(UTC)):
        with calling(f"list s3://{bucket}/{prefix} (s3:ListBucket)"):
            pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
        for item in (item for page in pages for item in page.get("Contents", [])):
            fetched.objects += 1
            local = folder / item["Key"]
            seen = local.with_name(local.name + ".seen.json")  # what reading it found, for the next run
            if not seen.is_file():
                with calling(f"read s3://{bucket}/{item['Key']} (s3:GetObject)"):
                    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                local.parent.mkdir(parents=True, exist_ok=True)
                found = Fetched()
                local.write_bytes(_cleaned(body, item["Key"], found))
                seen.write_text(
                    json.dumps({"windows": found.windows, "bad": found.bad_lines, "unreadable": found.unreadable})
                )
            noted = json.loads(seen.read_text())
            fetched.windows += noted["windows"]
            fetched.bad_lines += noted["bad"]
            fetched.unreadable += noted["unreadable"]
    return fetched


def _cleaned(body: bytes, key: str, fetched: Fetched) -> bytes:
    try:
        text = gzip.decompress(body).decode()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        fetched.unreadable.append(key)
        return gzip.compress(b"")
    kept = []
    for line in filter(None, text.splitlines()):
        try:
            window = json.loads(line)
        except ValueError:
            window = None
        if not isinstance(window, dict) or any(name not in window for name in REQUIRED):
            fetched.bad_lines += 1
            continue
        kept.append(line)
    fetched.windows += len(kept)
    return gzip.compress(("\n".join(kept) + "\n" if kept else "").encode())
