"""The fleet's windows merged by SQL: one query text for the embedded engine here (DuckDB, reading the delivered
objects) and for Amazon Athena over the Glue table at fleet scale.

Only what both engines take is written here (Trino's and DuckDB's shared subset): `WITH`, `row_number() OVER`,
`CROSS JOIN UNNEST(...) WITH ORDINALITY`, `array_agg(DISTINCT ...)`, `sum`, `min`, `max`, `count`. What differs is
where the rows come from: `{windows}`, the windows (DuckDB: a table of the downloaded objects; Athena: the Glue
table), and `{feature_bins}`, one row per window, feature and bin (device, started, seq, feature, bin, n) of the
windows counted once. DuckDB makes the latter with its own `unnest()`, five times faster here than its lateral
`CROSS JOIN UNNEST` over 17 million rows; on Athena it is a view of the same rows written with `CROSS JOIN UNNEST`.
A window delivered twice (QoS 1 is at least once) is counted once: a window is (device, started, seq).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

UNIQUE = """
WITH w AS (
  SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY device, started, seq ORDER BY received) AS arrival FROM {windows}
  ) AS all_copies
  WHERE arrival = 1 AND (device = {thing} OR {thing} = '')
)
"""

DEVICES = (
    UNIQUE
    + """
SELECT device, sum(messages) AS messages, sum(records) AS records, sum(dropped) AS dropped, sum(unsent) AS unsent,
       min(start) AS first_start, max("end") AS last_end, sum("end" - start) AS seconds, count(*) AS windows,
       array_agg(DISTINCT model_version) AS model_versions, array_agg(DISTINCT profile) AS profiles
FROM w GROUP BY device ORDER BY device
"""
)

FEATURE_BINS = """
SELECT device, feature, bin, sum(n) AS n FROM {feature_bins} AS x
WHERE device = {thing} OR {thing} = ''
GROUP BY device, feature, bin
"""

# DuckDB's own: the windows counted once (UNIQUE, as every query), then each window's bins as rows.
_DUCKDB_FEATURE_BINS = (
    "CREATE TEMP TABLE feature_bins AS"
    + UNIQUE
    + """
SELECT device, started, seq, feature, generate_subscripts(bins, 1) AS bin, unnest(bins) AS n FROM (
  SELECT device, started, seq, generate_subscripts(features, 1) AS feature, unnest(features) AS bins FROM w
) AS per_feature
"""
)

PREDICTION_BINS = (
    UNIQUE
    + """
SELECT device, b.j AS bin, sum(b.n) AS n
FROM w CROSS JOIN UNNEST(w.prediction) WITH ORDINALITY AS b(n, j)
GROUP BY device, b.j
"""
)

LATENCY = (
    UNIQUE
    + """
SELECT device, b.j AS bucket, sum(b.n) AS n
FROM w CROSS JOIN UNNEST(w.latency) WITH ORDINALITY AS b(n, j)
GROUP BY device, b.j
"""
)

# Windows that never arrived: a run (device, started) numbers its windows from 0 without gaps, so what is missing
# below its highest number was lost on the way (a spool lost in a core restart, a window the core refused).
LOST = (
    UNIQUE
    + """
SELECT device, sum(highest + 1 - arrived) AS lost FROM (
  SELECT device, started, max(seq) AS highest, count(*) AS arrived FROM w GROUP BY device, started
) AS runs GROUP BY device
"""
)

TIMELINE = (
    UNIQUE
    + """
SELECT floor("end" / 300) * 300 AS period, sum(messages) AS messages, sum("end" - start) AS seconds, count(*) AS windows
FROM w GROUP BY floor("end" / 300) * 300 ORDER BY period
"""
)


@dataclass(frozen=True)
class Merged:
    """What the queries returned, as rows of plain values."""

    devices: list[dict[str, Any]]
    feature_bins: dict[str, np.ndarray]  # device -> counts by [feature, bin], both from 0
    prediction_bins: list[tuple[str, int, int]]
    latency: list[tuple[str, int, int]]
    timeline: list[dict[str, Any]]
    lost: dict[str, int]  # windows missing from each device's runs


def source(folder: Path) -> str:
    """The delivered objects (gzip JSON lines) under `folder`, as DuckDB reads them; the schema is given, so windows
    without a reference (no `features`) and windows with one read alike."""
    columns = {
        "device": "VARCHAR",
        "started": "DOUBLE",
        "seq": "BIGINT",
        "start": "DOUBLE",
        "end": "DOUBLE",
        "received": "BIGINT",
        "model_version": "VARCHAR",
        "profile": "VARCHAR",
        "messages": "BIGINT",
        "records": "BIGINT",
        "dropped": "BIGINT",
        "unsent": "BIGINT",
        "latency": "BIGINT[]",
        "features": "BIGINT[][]",
        "prediction": "BIGINT[]",
    }
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    pattern = str(folder / "**" / "*.gz").replace("'", "''")
    return f"read_json('{pattern}', format='newline_delimited', compression='gzip', columns={{{spec}}})"


def _by_device(columns: dict[str, Any]) -> dict[str, np.ndarray]:
    """The (device, feature, bin, n) rows as one array a device, without a Python loop over the rows."""
    if not len(columns["device"]):
        return {}
    devices, which = np.unique(columns["device"].astype(str), return_inverse=True)
    features, bins = np.asarray(columns["feature"], int) - 1, np.asarray(columns["bin"], int) - 1
    counts = np.zeros((len(devices), features.max() + 1, bins.max() + 1))
    np.add.at(counts, (which, features, bins), np.asarray(columns["n"], float))
    return {str(device): counts[index] for index, device in enumerate(devices)}


def run(folder: Path, thing: str = "") -> Merged:
    """Every query on the embedded engine, over the objects under `folder` (an empty folder: nothing)."""
    if not any(folder.rglob("*.gz")):
        return Merged([], {}, [], [], [], {})
    connection = duckdb.connect()
    # The objects are read once, into a table the queries share, as Athena's would be the Glue table.
    connection.execute(f"CREATE TEMP TABLE delivered AS SELECT * FROM {source(folder)}")
    quoted = "'" + thing.replace("'", "''") + "'"
    relations = {"windows": "delivered", "feature_bins": "feature_bins", "thing": quoted}
    connection.execute(_DUCKDB_FEATURE_BINS.format(**relations))

    def rows(query: str) -> list[tuple[Any, ...]]:
        return connection.sql(query.format(**relations)).fetchall()

    def records(query: str) -> list[dict[str, Any]]:
        result = connection.sql(query.format(**relations))
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    return Merged(
        records(DEVICES),
        _by_device(connection.sql(FEATURE_BINS.format(**relations)).fetchnumpy()),
        [(str(d), int(b), int(n)) for d, b, n in rows(PREDICTION_BINS)],
        [(str(d), int(b), int(n)) for d, b, n in rows(LATENCY)],
        records(TIMELINE),
        {str(d): int(n) for d, n in rows(LOST)},
    )
