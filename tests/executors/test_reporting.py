"""Engine jobs' metrics and lineage as their executors record them -- no cluster needed.

The plan names the datasets; the store gets them once per attempt (a second reporter on the
same attempt directory, as after an executor restart, records nothing more); metric progress
lines are recorded once however often the log is read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tideflow as tide
from tideflow.client import Client, connect
from tideflow.domain.lineage import LineageRef
from tideflow.domain.progress import METRIC_EVENT, metric_line, parse_progress
from tideflow.executors.reporting import JobReporter, plan_datasets, read_progress
from tideflow.metadata import ExecutionService


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    made = connect(f"sqlite:///{tmp_path / 'tideflow.db'}", project="demo")
    yield made
    made.close()


def batch_workflow() -> Any:
    with tide.workflow("wf") as wf, tide.job("feats", engine="spark"):
        clicks = tide.read_dataset("clicks", config={"path": "/tmp/in"})
        views = tide.read_dataset("views", config={"path": "/tmp/in2"})
        both = tide.transform([clicks, views], processor=lambda ctx, inputs: inputs[0])
        tide.write_dataset(both, "features", config={"path": "/tmp/out"})
    return wf


def reporter_for(client: Client, tmp_path: Path) -> tuple[JobReporter, int]:
    wf = batch_workflow()
    snapshot = client.workflows.submit(wf, source=None).snapshot.snapshot_id
    executions = ExecutionService(client.store)
    run = executions.create_execution("demo", "wf", snapshot_id=snapshot)
    job = executions.create_job_execution("demo", run.execution_id, "feats", attempt=1)
    reporter = JobReporter(
        project="demo",
        job_execution_id=job.job_execution_id,
        engine="spark",
        control=tmp_path / "attempt" / ".tideflow",
        log_path=tmp_path / "job.log",
        metrics=client.services.metrics,
        lineage=client.services.lineage,
    )
    return reporter, job.job_execution_id


def test_the_plan_names_read_datasets_as_inputs_and_written_ones_as_outputs() -> None:
    job = tide.compile(batch_workflow()).job("feats")
    assert plan_datasets(job) == (["clicks", "views"], ["features"])


def test_lineage_is_recorded_once_and_an_unregistered_dataset_only_gets_a_log_line(
    client: Client, tmp_path: Path
) -> None:
    client.datasets.register("clicks", uri="file:///tmp/in", format="parquet")
    client.datasets.register("features", uri="file:///tmp/out", format="parquet")
    client.datasets.update("features", uri="file:///tmp/out2")  # version 2 is current
    reporter, job_execution_id = reporter_for(client, tmp_path)
    job = tide.compile(batch_workflow()).job("feats")

    reporter.record_lineage(job)
    again = JobReporter(  # a re-attached executor's reporter on the same attempt directory
        project="demo",
        job_execution_id=job_execution_id,
        engine="spark",
        control=reporter.control,
        log_path=reporter.log_path,
        metrics=client.services.metrics,
        lineage=client.services.lineage,
    )
    again.record_lineage(job)

    lineage = client.services.lineage
    (record,) = lineage.writers("demo", LineageRef.dataset("features"))
    assert record.job_execution_id == job_execution_id
    assert record.inputs == (LineageRef.dataset("clicks", 1),)
    assert record.outputs == (LineageRef.dataset("features", 2),)  # the current version
    log = reporter.log_path.read_text()
    assert log.count("dataset 'views' is not registered") == 1
    assert "clicks" not in log


def test_lineage_with_no_registered_dataset_records_nothing_and_fails_nothing(
    client: Client, tmp_path: Path
) -> None:
    reporter, _ = reporter_for(client, tmp_path)
    reporter.record_lineage(tide.compile(batch_workflow()).job("feats"))
    assert client.services.lineage.readers("demo", LineageRef.dataset("clicks")) == []
    log = reporter.log_path.read_text().splitlines()
    assert len(log) == 3  # one line per unregistered dataset
    assert reporter.lineage_recorded


def test_metric_lines_are_recorded_once_with_the_engine_tag_across_rereads(
    client: Client, tmp_path: Path
) -> None:
    reporter, job_execution_id = reporter_for(client, tmp_path)
    text = (
        "spark says hello\n"
        + metric_line("records_in", 12, step=0, tags={"query": "q"})
        + metric_line("rows_per_second", 3.5, step=0, tags={"query": "q"})
    )
    first = lines_of(text)
    reporter.record_lines(first, len(text.encode()))
    more = text + metric_line("records_in", 7, step=1, tags={"query": "q"})
    # A new reporter (restarted executor) reads the whole log from the start again.
    again = JobReporter(
        project="demo",
        job_execution_id=job_execution_id,
        engine="spark",
        control=reporter.control,
        log_path=reporter.log_path,
        metrics=client.services.metrics,
        lineage=None,
    )
    again.record_lines(lines_of(more), len(more.encode()))
    again.record_lines(lines_of(more), len(more.encode()))

    metrics = client.services.metrics.list_metrics("demo", job_execution_id=job_execution_id)
    assert [(m.name, m.value, m.step) for m in metrics] == [
        ("records_in", 12.0, 0),
        ("rows_per_second", 3.5, 0),
        ("records_in", 7.0, 1),
    ]
    assert all(m.tags == {"engine": "spark", "query": "q"} for m in metrics)


def test_a_malformed_metric_line_is_skipped_not_fatal(client: Client, tmp_path: Path) -> None:
    reporter, job_execution_id = reporter_for(client, tmp_path)
    text = metric_line("records_out", float("nan")) + metric_line("records_out", 4)
    reporter.record_lines(lines_of(text), len(text.encode()))
    metrics = client.services.metrics.list_metrics("demo", job_execution_id=job_execution_id)
    assert [(m.name, m.value) for m in metrics] == [("records_out", 4.0)]


def test_a_metric_line_parses_back_to_its_fields() -> None:
    fields = parse_progress(metric_line("bytes_out", 10, step=3, tags={"node": "n"}))
    assert fields == {
        "event": METRIC_EVENT,
        "name": "bytes_out",
        "value": 10,
        "step": 3,
        "tags": {"node": "n"},
    }


def test_read_progress_leaves_a_torn_line_for_the_next_read(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    whole = "a plain line\n" + metric_line("records_in", 1)
    torn = metric_line("records_in", 2)
    log.write_text(whole + torn[:10])
    lines, offset = read_progress(log, 0)
    assert [fields["value"] for _, fields in lines] == [1]
    assert offset == len(whole.encode())
    log.write_text(whole + torn)
    lines, offset = read_progress(log, offset)
    assert [(end, fields["value"]) for end, fields in lines] == [(offset, 2)]
    assert offset == len((whole + torn).encode())
    assert read_progress(tmp_path / "missing.log", 5) == ([], 5)


def lines_of(text: str) -> list[tuple[int, dict[str, Any]]]:
    """What an executor hands the reporter: (offset past each progress line, its fields)."""
    found: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    for raw in text.encode().splitlines(keepends=True):
        offset += len(raw)
        fields = parse_progress(raw.decode())
        if fields is not None:
            found.append((offset, fields))
    return found
