"""One self-contained HTML report of the fleet's telemetry: every picture an inline PNG (matplotlib), no script and
no link, so opening it fetches nothing.

What it shows: a devices x features heat map of drift (PSI, the worst devices first), the reference and the observed
shares of each drifting feature and of the predictions, the group's messages a second over time, and a table of
devices.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
import numpy as np

from scripts.monitoring.drift import SIGNIFICANT, Assessment, Reference
from scripts.monitoring.queries import Merged

HEAT_DEVICES = 60  # rows of the heat map: the worst devices
TABLE_DEVICES = 500


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _heat_map(assessment: Assessment) -> str:
    judged = [d for d in assessment.devices if d.judged]
    if not judged:
        return "<p>No device has windows with a reference profile and enough records: nothing to compare yet.</p>"
    worst = sorted(judged, key=lambda d: -max(d.psi.values()))[:HEAT_DEVICES]
    names = assessment.feature_names
    values = np.array([[d.psi.get(f, 0.0) for f in names] for d in worst])
    figure, axes = plt.subplots(figsize=(1 + 0.6 * len(names), 1 + 0.22 * len(worst)))
    image = axes.imshow(np.minimum(values, 1.0), aspect="auto", cmap="Reds", vmin=0, vmax=1.0)
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right")
    axes.set_yticks(range(len(worst)), [d.device for d in worst])
    figure.colorbar(image, label=f"PSI (significant over {SIGNIFICANT})")
    axes.set_title("Drift by device and feature (worst devices first)")
    return f'<div id="heatmap">{_png(figure)}</div>'


def _histograms(assessment: Assessment, merged: Merged, reference: Reference | None) -> str:
    if reference is None:
        return ""
    drifting = assessment.drifting()
    features = sorted({f for d in drifting for f in d.drifting}, key=assessment.feature_names.index)[:6]
    devices = {d.device for d in drifting}
    parts = []
    for feature in features:
        index = assessment.feature_names.index(feature)
        shares = np.asarray(reference.features[feature])
        observed = np.zeros(len(shares))
        for device in devices:
            counted = merged.feature_bins.get(device)
            if counted is not None and index < counted.shape[0]:
                width = min(len(shares), counted.shape[1])
                observed[:width] += counted[index, :width]
        parts.append(_bars(f"{feature}: the drifting devices' inputs against the training rows", shares, observed))
    shares = np.asarray(reference.prediction)
    observed = np.zeros(len(shares))
    for _, b, n in merged.prediction_bins:
        if 1 <= b <= len(shares):
            observed[b - 1] += n
    parts.append(_bars("Predictions of the whole group against the training rows'", shares, observed))
    return '<div id="histograms">' + "".join(parts) + "</div>"


def _bars(title: str, expected: np.ndarray, observed: np.ndarray) -> str:
    figure, axes = plt.subplots(figsize=(6, 2.6))
    positions = np.arange(len(expected))
    total = observed.sum()
    axes.bar(positions - 0.2, expected, 0.4, label="training (reference)")
    axes.bar(positions + 0.2, observed / total if total else observed, 0.4, label="observed")
    axes.set_xticks(positions, ["under"] + [str(i) for i in range(1, len(expected) - 1)] + ["over"])
    axes.set_ylabel("share")
    axes.set_title(title)
    axes.legend()
    return _png(figure)


def _timeline(merged: Merged) -> str:
    if not merged.timeline:
        return ""
    figure, axes = plt.subplots(figsize=(7, 2.6))
    times = [row["period"] for row in merged.timeline]
    rates = [row["messages"] / 300 for row in merged.timeline]
    axes.plot(np.asarray(times) - times[0], rates)
    axes.set_xlabel("seconds since the first window")
    axes.set_ylabel("messages / s (group)")
    axes.set_title("The group's messages a second")
    return f'<div id="timeline">{_png(figure)}</div>'


def _table(assessment: Assessment) -> str:
    rows = sorted(assessment.devices, key=lambda d: (-len(d.drifting), -max(d.psi.values(), default=0), d.device))
    head = "<tr><th>device</th><th>msg/s</th><th>p50 ms</th><th>p99 ms</th><th>dropped</th><th>windows</th>"
    head += "<th>models</th><th>drifting features</th><th>worst PSI</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(d.device)}</td><td>{d.messages_per_s}</td><td>{d.p50_ms}</td><td>{d.p99_ms}</td>"
        f"<td>{d.dropped}</td><td>{d.windows}</td><td>{html.escape(', '.join(d.model_versions))}</td>"
        f"<td>{html.escape(', '.join(d.drifting))}</td><td>{max(d.psi.values(), default=0):.3f}</td></tr>"
        for d in rows[:TABLE_DEVICES]
    )
    return f'<table id="devices">{head}{body}</table>'


def write(path: Path, assessment: Assessment, merged: Merged, reference: Reference | None, title: str) -> Path:
    group = assessment.group
    summary = (
        f"{group['devices']} devices, {group['windows']} windows, {group['messages']} messages "
        f"({group['messages_per_s']}/s), {group['dropped']} dropped, "
        f"p50 {group['p50_ms']} ms, p99 {group['p99_ms']} ms; "
        f"{group['drifting']} of {group['judged']} judged devices drifting"
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>
{_heat_map(assessment)}{_histograms(assessment, merged, reference)}{_timeline(merged)}{_table(assessment)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
    return path
