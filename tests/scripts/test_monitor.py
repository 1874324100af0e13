"""`make monitor`'s merge and drift judgement on the embedded engine (DuckDB, the same SQL text Athena runs), over
windows as the hollow devices send them (localcloud.hollow_telemetry) from a profile `make model` would write."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost as xgb
from selenium import webdriver
from subscriber_training import profile as profiling
from subscriber_training import wine

from localcloud import moto_aws
from localcloud.hollow import Drift, ScaledClock
from localcloud.hollow_telemetry import HollowTelemetry, Setup
from localcloud.hollow_telemetry import Reference as HollowReference
from scripts import render
from scripts.monitoring import drift, monitor, queries
from tests.conftest import REPO, machine_command
from tests.support.models import small_model
from tests.support.outputs import stack_outputs

SCREENSHOTS = REPO / "build" / "screenshots"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, seed: Path) -> tuple[bytes, drift.Reference]:
    folder = tmp_path_factory.mktemp("monitor-model")
    model = small_model(folder, seed)
    rows = wine.load_csv(seed / "wine_concat.csv").features
    raw = json.dumps(profiling.make(xgb.Booster(model_file=str(model)), rows, "m" * 64, "d" * 64)).encode()
    sha = hashlib.sha256(raw).hexdigest()
    return raw, drift.Reference.of(sha, json.loads(raw))


def fleet_windows(
    raw: bytes, devices: int, seconds: float, spec: str, folder: Path, seed: int = 7
) -> tuple[list[dict[str, Any]], set[str]]:
    """Each device's windows over `seconds` (300 s each), as the rule delivers them (with `device`, `received`),
    written as Firehose's gzip JSON lines."""
    setup = Setup("edgeml", 300.0, HollowReference.of(raw), "c" * 64, "1.0.3")
    things = [f"dev-{index:04d}" for index in range(devices)]
    telemetry = HollowTelemetry(things, Drift.parse(spec, seed=seed), ScaledClock(), lambda t: setup, print, seed)
    windows = []
    for thing in things:
        for seq, start in enumerate(np.arange(0.0, seconds, 300.0)):
            window = telemetry.window(thing, setup, 0.0, seq, float(start), float(min(start + 300.0, seconds)))
            windows.append({**window, "device": thing, "received": int(start * 1000)})
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "part-1.gz", "wt") as out:
        out.writelines(json.dumps(window) + "\n" for window in windows)
    return windows, set(telemetry.drifted())


def test_a_tenth_of_a_thousand_devices_moved_on_two_features_are_found_and_named(
    reference: tuple[bytes, drift.Reference], tmp_path: Path
) -> None:
    """The issue's bar: 1,000 devices x about 500 messages, 100 of them shifted by one training standard deviation on
    two of the features: at least 95% of the shifted flagged with both features named, at most 2% of the others."""
    raw, ref = reference
    windows, shifted = fleet_windows(raw, 1000, 500.0, "0.1:alcohol,pH:1.0", tmp_path / "windows")
    assessment = drift.assess(queries.run(tmp_path / "windows"), {ref.sha256: ref})
    flagged = {d.device: d for d in assessment.devices if d.drifting}
    caught = [thing for thing in shifted if thing in flagged and {"alcohol", "pH"} <= set(flagged[thing].drifting)]
    false = [thing for thing in flagged if thing not in shifted]
    assert 80 <= len(shifted) <= 120
    assert len(caught) >= 0.95 * len(shifted), (len(caught), len(shifted))
    assert len(false) <= 0.02 * (1000 - len(shifted)), false
    # The counts merged are the counts sent.
    assert assessment.group["messages"] == sum(w["messages"] for w in windows)
    assert assessment.group["records"] == sum(w["records"] for w in windows)


def test_a_window_delivered_twice_counts_once_and_one_thing_can_be_asked_for(
    reference: tuple[bytes, drift.Reference], tmp_path: Path
) -> None:
    """QoS 1 is at least once: a window is (device, started, seq), whatever copies arrived."""
    raw, _ = reference
    windows, _ = fleet_windows(raw, 3, 900.0, "", tmp_path / "windows")
    with gzip.open(tmp_path / "windows" / "part-2.gz", "wt") as out:
        out.write(json.dumps({**windows[0], "received": windows[0]["received"] + 5}) + "\n")
    merged = queries.run(tmp_path / "windows")
    assert sum(row["messages"] for row in merged.devices) == sum(w["messages"] for w in windows)
    assert sum(row["windows"] for row in merged.devices) == len(windows)
    one = queries.run(tmp_path / "windows", thing="dev-0001")
    assert [row["device"] for row in one.devices] == ["dev-0001"]
    assert merged.lost == {"dev-0000": 0, "dev-0001": 0, "dev-0002": 0}


def test_windows_missing_from_a_runs_numbering_are_reported_lost(
    reference: tuple[bytes, drift.Reference], tmp_path: Path
) -> None:
    """A core restarted with its spool in memory loses what it held (localgg.spool, the nucleus's InMemorySpool): the
    subscriber's next windows arrive, the held ones never do, and the gap in the run's numbering says how many."""
    raw, _ = reference
    windows, _ = fleet_windows(raw, 1, 3000.0, "", tmp_path / "made")
    kept = [w for w in windows if w["seq"] not in (3, 4, 5)]  # held in the spool when the core restarted
    (tmp_path / "windows").mkdir()
    with gzip.open(tmp_path / "windows" / "a.gz", "wt") as out:
        out.writelines(json.dumps(w) + "\n" for w in kept)
    assessment = drift.assess(queries.run(tmp_path / "windows"), {})
    assert assessment.devices[0].lost_windows == 3 and assessment.group["lost_windows"] == 3


def test_latency_quantiles_are_bucket_edges_and_no_reference_is_said(tmp_path: Path) -> None:
    window = {
        "device": "pi-1", "started": 1.0, "seq": 0, "start": 0.0, "end": 100.0, "received": 1, "model_version": "1",
        "profile": None, "messages": 100, "records": 200, "dropped": 3, "unsent": 0,
        "latency": [0] * 8 + [98, 0, 0, 0, 2],
    }  # fmt: skip
    (tmp_path / "w").mkdir()
    with gzip.open(tmp_path / "w" / "a.gz", "wt") as out:
        out.write(json.dumps(window) + "\n")
    (device,) = drift.assess(queries.run(tmp_path / "w"), {}).devices
    assert device.p50_ms == round(0.1 * 2**4, 3) and device.p99_ms == round(0.1 * 2**6, 3)
    assert device.reference is None and device.psi == {} and not device.judged
    assert (device.messages_per_s, device.dropped) == (1.0, 3)


def test_psi_is_zero_for_the_training_shares_and_grows_with_a_shift() -> None:
    shares = np.array([0, 0.25, 0.25, 0.25, 0.25, 0])
    assert drift.psi(shares * 1000, shares) == pytest.approx(0, abs=1e-9)
    moved = np.array([0, 0, 0.25, 0.25, 0.25, 0.25])
    assert drift.psi(moved * 1000, shares) > drift.SIGNIFICANT


@dataclass(frozen=True)
class Monitored:
    record: dict[str, Any]
    report: Path
    windows: list[dict[str, Any]]
    stranger: dict[str, Any]
    shifted: set[str]
    hour: str
    unchanged: bool  # the account's objects are the same after


@pytest.fixture(scope="module")
def monitored(reference: tuple[bytes, drift.Reference], tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    """`make monitor`'s work over S3 (moto as a real endpoint, the objects where Firehose writes them) for 300
    devices, with an object that is not gzip, a line that is not a window and a window of an unknown profile."""
    raw, ref = reference
    tmp_path = tmp_path_factory.mktemp("monitored")
    server, endpoint = moto_aws.start()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="k",
                          aws_secret_access_key="s")  # fmt: skip
        outputs = stack_outputs("eu-west-1", "123456789012", "r/edgeml", "mon-bucket", "arn:aws:iot:x:1:thinggroup/g")
        s3.create_bucket(Bucket="mon-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        key = f"artifacts/{outputs.components.model}/{ref.sha256}/profile-{ref.sha256[:12]}.json"
        s3.put_object(Bucket="mon-bucket", Key=key, Body=raw)
        windows, shifted = fleet_windows(raw, 300, 600.0, "0.1:alcohol:1.5", tmp_path / "made")
        now = datetime.now(UTC)
        hour = now.strftime("year=%Y/month=%m/day=%d/hour=%H")
        body = "".join(json.dumps({**w, "profile": ref.sha256}) + "\n" for w in windows) + "not json\n"
        stranger = {**windows[0], "device": "stranger", "profile": "f" * 64}
        s3.put_object(Bucket="mon-bucket", Key=f"telemetry/windows/{hour}/a.gz", Body=gzip.compress(body.encode()))
        s3.put_object(Bucket="mon-bucket", Key=f"telemetry/windows/{hour}/b.gz", Body=b"plain, not gzip")
        s3.put_object(
            Bucket="mon-bucket", Key=f"telemetry/windows/{hour}/c.gz",
            Body=gzip.compress((json.dumps(stranger) + "\n").encode()),
        )  # fmt: skip
        before = s3.list_objects_v2(Bucket="mon-bucket")["Contents"]
        done = monitor.monitor(s3, outputs, "1h", "", tmp_path / "monitor")
        unchanged = s3.list_objects_v2(Bucket="mon-bucket")["Contents"] == before
    finally:
        server.stop()
    report = tmp_path / "monitor" / "report.html"
    return Monitored(done.record(), report, windows, stranger, shifted, hour, unchanged)


def test_make_monitor_reads_the_account_reports_and_names_what_it_could_not_read(monitored: Monitored) -> None:
    """The record, the terminal's lines (at most 25 for 300 devices), the self-contained report; each bad input
    counted and named, never a traceback, and the account only read."""
    record, windows, hour = monitored.record, monitored.windows, monitored.hour
    assert record["windows"] == len(windows) + 1 and record["bad_lines"] == 1
    assert record["unreadable_objects"] == [f"telemetry/windows/{hour}/b.gz"]
    assert record["unknown_profiles"] == ["f" * 64]
    assert set(record["drifting"]) <= monitored.shifted and len(record["drifting"]) >= 0.9 * len(monitored.shifted)
    assert record["group"]["messages"] == sum(w["messages"] for w in windows) + monitored.stranger["messages"]
    lines = render.monitor(record)
    assert len(lines) <= 25 and lines[-1] == f"report: {monitored.report}"
    assert any(line.startswith("left out: 1 unreadable objects") for line in lines)
    page = monitored.report.read_text()
    assert 'id="heatmap"' in page and 'id="histograms"' in page and len(page) < 5_000_000
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert monitored.unchanged


def test_the_report_opens_in_a_real_browser_offline_and_asks_for_nothing(monitored: Monitored) -> None:
    """Debian's Chromium, headless, its network switched off (DevTools' Network.emulateNetworkConditions): the heat
    map and a histogram are drawn (decoded images with a width), the console has no error, and every request the
    page made is the file itself or an inline image. The screenshot is build/screenshots/monitor-report.png."""
    chromedriver, chromium = machine_command("chromium-driver"), machine_command("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: Chromium's sandbox refuses to start as root, as CI runs; the page is the test's own file.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        browser.execute_cdp_cmd("Network.enable", {})
        offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
        browser.get(monitored.report.as_uri())
        drawn = "const i = document.querySelector(arguments[0]); return i && i.complete ? i.naturalWidth : 0"
        assert browser.execute_script(drawn, "#heatmap img") > 0
        assert browser.execute_script(drawn, "#histograms img") > 0
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        requested = [
            message["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if (message := json.loads(entry["message"])["message"])["method"] == "Network.requestWillBeSent"
        ]
        assert requested and all(url == monitored.report.as_uri() or url.startswith("data:") for url in requested)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOTS / "monitor-report.png"))
    finally:
        browser.quit()


def test_since_is_a_span_in_minutes_hours_or_days() -> None:
    assert monitor.parse_since("90m").total_seconds() == 5400
    assert monitor.parse_since("2d").total_seconds() == 172800
    for wrong in ("1w", "h", "-1h", ""):
        with pytest.raises(ValueError, match="--since"):
            monitor.parse_since(wrong)
