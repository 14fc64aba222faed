"""Benchmark of issue 8: what the monitors cost per 1,000 samples, and how soon they detect.

    .venv/bin/python benchmarks/monitor_overhead.py
    .venv/bin/python benchmarks/monitor_overhead.py --quick
    .venv/bin/python benchmarks/monitor_overhead.py --markdown docs/benchmarks.md

What is measured (in-process, on the monitors' own building blocks -- the work a monitor job
does per sample, without reading the stream or sending metrics to a server, which the I/O and
RPC benchmarks cover):

* **Example Monitor** overhead: CPU time (``time.process_time``) to add 1,000 prediction
  records to a sliding window (500 samples, step 100) and score every window that falls due
  against a 5,000-sample baseline, for N = 4, 16 and 64 features (half numeric: PSI + KS; half
  categorical with 8 levels: chi-square);
* **Model Monitor** overhead: CPU time per 1,000 samples to join predictions with labels
  (labels a little out of order), feed the detector, and compute AUC / log-loss / calibration
  of every window (1,000 samples, step 250), per detector;
* **detection delay** in samples after a shift, median and p99 over seeds: for the Model
  Monitor, predictions of a calibrated model whose click rate then rises by 0.2 (ADWIN,
  Page-Hinkley, on per-sample log-loss); for the Example Monitor, one of 8 features shifted by
  0.5 standard deviations (windows of 500, step 100);
* false alarms on the same streams without a shift, per 100,000 samples.

``--markdown`` replaces (or appends) only the "## Monitors (issue 8)" section of that file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from tideflow.monitor import DegradationDetector, DriftScorer, LabelJoin, SlidingWindow
from tideflow.monitor.quality import window_quality

SECTION = "## Monitors (issue 8)"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def summary(values: list[float]) -> tuple[float, float]:
    """Median and p99 (interpolated)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0], ordered[0]
    p99 = float(np.percentile(ordered, 99))
    return statistics.median(ordered), p99


def records(rng: np.random.Generator, n: int, features: int, shift: float = 0.0) -> list[dict]:
    """Prediction records with ``features`` features, half numeric and half categorical."""
    numeric = features // 2
    nums = rng.normal(size=(n, numeric))
    nums[:, 0] += shift
    cats = rng.integers(0, 8, size=(n, features - numeric))
    rows = []
    for i in range(n):
        row: dict[str, Any] = {f"x{j}": float(nums[i, j]) for j in range(numeric)}
        row.update({f"c{j}": f"v{cats[i, j]}" for j in range(features - numeric)})
        rows.append({"request_id": str(i), "features": row, "score": 0.5})
    return rows


def example_overhead(features: int, repeats: int) -> list[float]:
    """CPU seconds per 1,000 records, one figure per repeat."""
    rng = np.random.default_rng(features)
    baseline = [r["features"] for r in records(rng, 5000, features)]
    scorer = DriftScorer(baseline, overlap=5)
    stream = records(rng, 1000 * repeats + 500, features)
    window: SlidingWindow[dict] = SlidingWindow(500, 100)
    for row in stream[:500]:  # fill the first window
        window.add(row)
    scorer.score(0, stream[:500])  # warm up: SciPy imports, cached critical values
    figures = []
    for k in range(repeats):
        chunk = stream[500 + 1000 * k : 500 + 1000 * (k + 1)]
        start = time.process_time()
        for row in chunk:
            due = window.add(row)
            if due is not None:
                scorer.score(window.index, due)
        figures.append(time.process_time() - start)
    return figures


def model_overhead(detector: str, repeats: int) -> list[float]:
    """CPU seconds per 1,000 joined samples, one figure per repeat."""
    rng = np.random.default_rng(7)
    n = 1000 * repeats
    scores = rng.uniform(0.05, 0.5, n)
    labels = (rng.random(n) < scores).astype(int)
    order = np.argsort(np.arange(n) + rng.uniform(0, 50, n))
    join = LabelJoin()
    found = DegradationDetector(detector)
    window: SlidingWindow[tuple[int, float]] = SlidingWindow(1000, 250)
    window_quality([0, 1], [0.2, 0.7])  # warm up: SciPy imports
    figures = []
    for k in range(repeats):
        part = range(1000 * k, 1000 * (k + 1))
        start = time.process_time()
        pairs = []
        for i in part:
            join.add_prediction({"request_id": str(i), "score": float(scores[i]), "version": 1})
        for i in order[1000 * k : 1000 * (k + 1)]:
            pair = join.add_label(str(i), int(labels[i]))
            if pair is not None:
                pairs.append(pair)
        for pair in pairs:
            found.update(pair.label, pair.score)
            due = window.add((pair.label, pair.score))
            if due is not None:
                window_quality([s[0] for s in due], [s[1] for s in due])
        figures.append(time.process_time() - start)
    return figures


def degradation_delays(detector: str, seeds: int) -> tuple[list[float], int, int]:
    """Delays after the shift (samples), missed shifts, and false alarms in 100,000 samples."""
    delays: list[float] = []
    missed = 0
    at, n = 5000, 15_000
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        scores = rng.uniform(0.05, 0.5, n)
        truth = scores.copy()
        truth[at:] = np.minimum(truth[at:] + 0.2, 1.0)
        labels = (rng.random(n) < truth).astype(int)
        found = DegradationDetector(detector, cooldown=n)
        if not _quiet_until(found, labels, scores, at):
            missed += 1  # fired before the shift: deaf afterwards, so the shift is missed
            continue
        alarm = next(
            (i for i in range(at, n) if found.update(int(labels[i]), float(scores[i]))), None
        )
        if alarm is None:
            missed += 1
        else:
            delays.append(float(alarm - at))
    false_alarms = 0
    for seed in range(5):
        rng = np.random.default_rng(1000 + seed)
        scores = rng.uniform(0.05, 0.5, 20_000)
        labels = (rng.random(20_000) < scores).astype(int)
        found = DegradationDetector(detector)
        false_alarms += sum(
            found.update(int(y), float(p)) for y, p in zip(labels, scores, strict=True)
        )
    return delays, missed, false_alarms


def _quiet_until(found: DegradationDetector, labels: Any, scores: Any, at: int) -> bool:
    """Feed the samples before the shift; False if the detector (falsely) fired on them."""
    return not any(found.update(int(labels[i]), float(scores[i])) for i in range(at))


def drift_delays(seeds: int) -> tuple[list[float], int]:
    """Example Monitor: samples after a 0.5-sd shift of 1 of 8 features until a window flags it."""
    delays: list[float] = []
    missed = 0
    at = 3000
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        scorer = DriftScorer([r["features"] for r in records(rng, 5000, 8)], overlap=5)
        stream = records(rng, at, 8) + records(rng, 3000, 8, shift=0.5)
        window: SlidingWindow[dict] = SlidingWindow(500, 100)
        alarm = None
        for i, row in enumerate(stream):
            due = window.add(row)
            if due is not None and i + 1 > at and "x0" in scorer.score(window.index, due).drifted:
                alarm = i + 1
                break
        if alarm is None:
            missed += 1
        else:
            delays.append(float(alarm - at))
    return delays, missed


def run(quick: bool) -> dict[str, Any]:
    repeats = 5 if quick else 20
    seeds = 10 if quick else 50
    results: dict[str, Any] = {"repeats": repeats, "seeds": seeds, "example": {}, "model": {}}
    for features in (4, 16, 64):
        figures = example_overhead(features, repeats)
        results["example"][features] = summary(figures)
        print(f"example monitor, {features} features: {summary(figures)} s / 1,000 samples")
    for detector in ("adwin", "page_hinkley"):
        figures = model_overhead(detector, repeats)
        delays, missed, false_alarms = degradation_delays(detector, seeds)
        results["model"][detector] = {
            "overhead": summary(figures),
            "delay": summary(delays) if delays else (float("nan"), float("nan")),
            "missed": missed,
            "false_alarms": false_alarms,
        }
        print(f"model monitor, {detector}: {results['model'][detector]}")
    delays, missed = drift_delays(seeds)
    results["drift"] = {"delay": summary(delays), "missed": missed}
    print(f"example monitor detection: {results['drift']}")
    return results


def markdown(results: dict[str, Any]) -> str:
    m = machine()
    ms = 1000.0
    rows = []
    for features, (median, p99) in results["example"].items():
        rows.append(
            f"| Example Monitor, {features} features (window 500, step 100) | "
            f"{median * ms:.1f} ms | {p99 * ms:.1f} ms | {1.0 / median * 1000:,.0f} samples/s |"
        )
    for detector, found in results["model"].items():
        median, p99 = found["overhead"]
        rows.append(
            f"| Model Monitor, {detector} (join + detector + window 1,000 step 250) | "
            f"{median * ms:.1f} ms | {p99 * ms:.1f} ms | {1.0 / median * 1000:,.0f} samples/s |"
        )
    delays = []
    for detector, found in results["model"].items():
        median, p99 = found["delay"]
        delays.append(
            f"| Model Monitor, {detector}: click rate +0.2 | {median:,.0f} | {p99:,.0f} | "
            f"{found['missed']} of {results['seeds']} | {found['false_alarms']} |"
        )
    median, p99 = results["drift"]["delay"]
    delays.append(
        f"| Example Monitor: 1 of 8 features shifted by 0.5 sd | {median:,.0f} | {p99:,.0f} | "
        f"{results['drift']['missed']} of {results['seeds']} | - |"
    )
    return f"""{SECTION}

`benchmarks/monitor_overhead.py` on {m["cpu"]}, {m["cores"]} cores, Python {m["python"]},
{m["platform"]}, {dt.date.today().isoformat()}. In-process, the monitors' own work per sample
(stream reads and metric RPCs are not included: one `log_metric` per feature statistic or
quality metric per window, see the RPC section). CPU time per 1,000 samples over
{results["repeats"]} repeats:

| monitor | median | p99 | throughput |
|---|---|---|---|
{chr(10).join(rows)}

Detection delay in samples after the shift (median and p99 over {results["seeds"]} seeds; the
Model Monitor's detectors are fed the per-sample log-loss of a calibrated model; the Example
Monitor's delay counts to the end of the first window that flags the shifted feature; "missed"
counts seeds where a detector never fired after the shift, or fired before it and was still deaf
in its cooldown), and false alarms of the detectors on 100,000 stationary samples:

| shift | median delay | p99 delay | missed | false alarms / 100k |
|---|---|---|---|---|
{chr(10).join(delays)}
"""


def write_markdown(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        merged = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines)
        )
        merged = "\n".join([*lines[:start], section.rstrip("\n"), "", *lines[end:]]).rstrip("\n")
        merged += "\n"
    path.write_text(merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and seeds")
    parser.add_argument("--markdown", type=Path, help="update this file's monitors section")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results = run(args.quick)
    section = markdown(results)
    print(section)
    if args.markdown:
        write_markdown(args.markdown, section)


if __name__ == "__main__":
    main()
