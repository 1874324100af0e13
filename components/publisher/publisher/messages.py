"""Records in, messages out: the reference's format `{"body": "<JSON list>", "isBase64Encoded": bool}`."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


class SamplesError(ValueError):
    """The samples file is unusable; the message names it."""


@dataclass(frozen=True)
class Settings:
    topic: str = "local/topic"
    interval: float = 5.0
    batch_size: int = 2
    base64: bool = False
    count_limit: int = 0  # MSG_COUNT_LIMIT: 0 publishes until stopped
    samples_file: str = ""  # empty: the samples bundled with the component

    @classmethod
    def from_component(cls, values: dict[str, Any]) -> Settings:
        default = cls()
        settings = cls(
            topic=str(values.get("topic", default.topic)),
            interval=float(values.get("interval", default.interval)),
            batch_size=int(values.get("batchSize", default.batch_size)),
            base64=_truthy(values.get("base64", default.base64)),
            count_limit=int(values.get("MSG_COUNT_LIMIT", default.count_limit)),
            samples_file=str(values.get("samplesFile", default.samples_file)),
        )
        if settings.interval < 0 or settings.batch_size < 1 or settings.count_limit < 0:
            raise ValueError(f"interval must be >= 0, batchSize >= 1 and MSG_COUNT_LIMIT >= 0: {settings}")
        return settings


def _truthy(value: Any) -> bool:
    # Greengrass configuration values set from the CLI or console often arrive as strings.
    return value is True or str(value).lower() in ("true", "1", "yes")


def load_records(samples_file: str) -> list[dict[str, Any]]:
    try:
        if samples_file:
            text = Path(samples_file).read_text()
            source = samples_file
        else:
            text = resources.files("publisher").joinpath("samples.json").read_text()
            source = "the bundled samples.json"
        records = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise SamplesError(f"cannot read records from {samples_file or 'samples.json'}: {exc}") from None
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise SamplesError(f"{source} must hold a non-empty JSON list of record objects")
    return records


def encode(batch: list[dict[str, Any]], as_base64: bool) -> bytes:
    body = json.dumps(batch)
    if as_base64:
        body = base64.b64encode(body.encode()).decode()
    return json.dumps({"body": body, "isBase64Encoded": as_base64}).encode()


def messages(records: list[dict[str, Any]], settings: Settings) -> Iterator[bytes]:
    """Batches of `batch_size` records, cycling through the samples, up to `count_limit` messages (0: forever)."""
    cycle = itertools.cycle(records)
    count = itertools.count() if settings.count_limit == 0 else range(settings.count_limit)
    for _ in count:
        yield encode([next(cycle) for _ in range(settings.batch_size)], settings.base64)
