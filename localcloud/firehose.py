"""Kinesis Data Firehose's delivery to Amazon S3, as the local cloud runs it under moto's Firehose API.

moto keeps the delivery streams (CreateDeliveryStream, DescribeDeliveryStream: what Terraform makes) but writes one
object per PutRecord; Firehose buffers. From the Firehose developer guide:
- "Buffering hints": a stream writes what it holds once `SizeInMBs` are buffered or `IntervalInSeconds` passed,
  whichever comes first (defaults 5 MiB and 300 s);
- "Amazon S3 object name format": `<prefix><stream name>-<version>-<yyyy-MM-dd-HH-mm-ss>-<random string>`, with
  `.gz` for GZIP; the time is the arrival of the oldest record in the object, in UTC; without a prefix that uses
  the `timestamp` namespace, `YYYY/MM/dd/HH/` is added to the prefix;
- "Custom prefixes for Amazon S3 objects": `!{timestamp:<Java DateTimeFormatter pattern>}` and
  `!{firehose:random-string}` are evaluated (this cloud reads the patterns' yyyy, MM, dd, HH, mm and ss);
- "Data delivery failure handling": when S3 refuses the write (the role may not write there, say), Firehose retries
  every 5 seconds for up to 24 hours and then discards the data. Each refusal is logged here as the stream's
  CloudWatch error log would show it (`S3.AccessDenied`).
Writes go as the stream's role (`RoleARN`), which Firehose must be trusted to assume and which must allow
s3:PutObject on the object (localcloud.service_role).
"""

from __future__ import annotations

import gzip
import logging
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.firehose.models import FirehoseBackend
from moto.s3.models import s3_backends

from localcloud.service_role import NotPermitted, ServiceRoles

log = logging.getLogger("localcloud.firehose")
MIB = 1024 * 1024
RETRY_SECONDS = 5.0
GIVE_UP_SECONDS = 24 * 3600.0
_PATTERN = re.compile(r"yyyy|MM|dd|HH|mm|ss")
_JAVA = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


@dataclass
class _Buffer:
    destination: dict[str, Any]
    version: str
    records: list[bytes] = field(default_factory=list)
    size: int = 0
    oldest: float = 0.0  # arrival of the oldest record held (the clock's seconds)
    next_try: float = 0.0  # after a refused write


def object_key(stream: str, version: str, destination: dict[str, Any], arrived: float) -> str:
    when = datetime.fromtimestamp(arrived, UTC)
    prefix = str(destination.get("Prefix") or "")
    if "!{timestamp:" not in prefix:
        prefix += when.strftime("%Y/%m/%d/%H/")

    def evaluate(match: re.Match[str]) -> str:
        namespace, _, expression = match.group(1).partition(":")
        if namespace == "timestamp":
            return _PATTERN.sub(lambda token: when.strftime(_JAVA[token.group(0)]), expression)
        if namespace == "firehose" and expression == "random-string":
            return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11))
        return match.group(0)

    prefix = re.sub(r"!\{([^}]*)\}", evaluate, prefix)
    suffix = ".gz" if destination.get("CompressionFormat") == "GZIP" else ""
    return f"{prefix}{stream}-{version}-{when.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}{suffix}"


class Delivery:
    """Every stream's buffer; `tick` (called often, from one thread) writes those that are due."""

    def __init__(self, account: str, clock: Callable[[], float] = time.time) -> None:
        self.account, self.clock = account, clock
        self.roles = ServiceRoles(account, "firehose.amazonaws.com")
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._lock = threading.Lock()
        self.delivered: list[str] = []  # the keys written, in order (for the tests and the log)

    def put(self, region: str, stream: str, version: str, destination: dict[str, Any], records: list[bytes]) -> None:
        with self._lock:
            buffer = self._buffers.setdefault((region, stream), _Buffer(destination, version))
            buffer.destination, buffer.version = destination, version
            if not buffer.records:
                buffer.oldest = self.clock()
            buffer.records.extend(records)
            buffer.size += sum(len(record) for record in records)
            full = buffer.size >= self._hints(destination)[0]
        if full:
            self.tick()

    @staticmethod
    def _hints(destination: dict[str, Any]) -> tuple[int, float]:
        hints = destination.get("BufferingHints") or {}
        return int(hints.get("SizeInMBs") or 5) * MIB, float(hints.get("IntervalInSeconds") or 300)

    def tick(self, everything: bool = False) -> None:
        """Writes each buffer that holds its size or is as old as its interval (`everything`: all that hold any)."""
        now = self.clock()
        with self._lock:
            due = []
            for (region, stream), buffer in self._buffers.items():
                size, interval = self._hints(buffer.destination)
                ready = buffer.size >= size or now - buffer.oldest >= interval or everything
                if buffer.records and ready and now >= buffer.next_try:
                    due.append((region, stream, buffer))
            for region, stream, buffer in due:
                self._write(region, stream, buffer, now)

    def _write(self, region: str, stream: str, buffer: _Buffer, now: float) -> None:
        destination = buffer.destination
        bucket = str(destination["BucketARN"]).split(":")[-1]
        key = object_key(stream, buffer.version, destination, buffer.oldest)
        try:
            self.roles.check(str(destination.get("RoleARN")), "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")
        except NotPermitted as exc:
            if now - buffer.oldest >= GIVE_UP_SECONDS:
                log.error("%s: S3.AccessDenied for 24 hours; %d records discarded", stream, len(buffer.records))
                buffer.records, buffer.size = [], 0
            else:
                log.error("%s: S3.AccessDenied: %s (retried in %gs)", stream, exc, RETRY_SECONDS)
                buffer.next_try = now + RETRY_SECONDS
            return
        body = b"".join(buffer.records)
        if destination.get("CompressionFormat") == "GZIP":
            body = gzip.compress(body)
        s3_backends[self.account]["aws"].put_object(bucket, key, body)
        log.info("%s: %d records (%d bytes) to s3://%s/%s", stream, len(buffer.records), len(body), bucket, key)
        self.delivered.append(key)
        buffer.records, buffer.size, buffer.next_try = [], 0, 0.0


def install(delivery: Delivery) -> Callable[[], None]:
    """moto's Firehose hands S3-bound records to `delivery`; returns what puts moto's own writing back."""
    original = FirehoseBackend.put_s3_records

    def buffered(
        self: FirehoseBackend,
        delivery_stream_name: str,
        version_id: str,
        s3_destination: dict[str, Any],
        records: list[dict[str, bytes]],
    ) -> list[dict[str, str]]:
        delivery.put(self.region_name, delivery_stream_name, version_id, s3_destination, [r["Data"] for r in records])
        return [{"RecordId": str(uuid.uuid4())} for _ in records]

    FirehoseBackend.put_s3_records = buffered  # type: ignore[method-assign]

    def uninstall() -> None:
        FirehoseBackend.put_s3_records = original  # type: ignore[method-assign]

    return uninstall
