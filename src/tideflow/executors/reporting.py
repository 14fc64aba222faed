"""Metrics and lineage of engine jobs, recorded by the executor that watches them.

Spark and Flink processors are data-only: nothing in the engine's environment may talk to the
Tideflow server. What such a job measured and which datasets it touched is therefore recorded
from outside, by its executor, through the services in
:class:`~tideflow.executors.base.ExecutorContext`; this module is the part both executors share.

- **Lineage** comes from the plan: the job's ``read_dataset`` nodes are its inputs and its
  ``write_dataset`` nodes its outputs (``node.dataset``), recorded as plain dataset references,
  so the store pins each to the dataset's current version -- what the Python engine records for
  a file dataset (files have no offsets, and writing one does not make a new version). It is
  recorded once per attempt: a marker file in the attempt's control directory says it was done,
  so an executor that re-attaches to the attempt after a restart does not record it again. A
  dataset that is not registered is left out with one line in the job's log; it never fails the
  job (lineage describes the job, it does not gate it).
- **Metrics** are engine-neutral names (:data:`METRIC_NAMES`) with an ``engine`` tag, attached
  to the job execution. Lines of the job's log (``metric`` progress lines of
  :mod:`tideflow.domain.progress`) are recorded at most once per attempt: the byte offset of the
  log consumed so far is kept beside the marker, so a re-attached executor that reads the log
  from its start skips what an earlier instance recorded.

A recording failure (the store briefly unavailable, a malformed number) is logged and dropped:
the executor's job is to report the job's status, and that must not stop over a metric.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tideflow.compiler.plan import PlanJob
from tideflow.domain.attempt import write_atomically
from tideflow.domain.graph import NodeKind
from tideflow.domain.lineage import LineageRef
from tideflow.domain.progress import METRIC_EVENT, parse_progress
from tideflow.errors import NotFoundError, TideflowError
from tideflow.metadata.measurement import LineageService, MetricService

log = logging.getLogger(__name__)

METRIC_NAMES = ("records_in", "records_out", "bytes_in", "bytes_out", "rows_per_second")
"""The metrics executors record for engine jobs (docs/engines.md says what each one means)."""
LINEAGE_MARKER = "lineage.recorded"
METRIC_OFFSET = "metrics.offset"


def plan_datasets(job: PlanJob) -> tuple[list[str], list[str]]:
    """``(inputs, outputs)``: the datasets the job's built-in read / write nodes name, in order."""
    inputs: list[str] = []
    outputs: list[str] = []
    for node in job.nodes:
        if node.dataset is None:
            continue
        if node.kind is NodeKind.READ_DATASET and node.dataset not in inputs:
            inputs.append(node.dataset)
        elif node.kind is NodeKind.WRITE_DATASET and node.dataset not in outputs:
            outputs.append(node.dataset)
    return inputs, outputs


def read_progress(path: Path, offset: int) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The progress lines appended to the log ``path`` since byte ``offset``.

    Returns:
        ``(offset just past the line, fields)`` of each whole progress line, and the offset
        past the last whole line read (a line still being written is left for next time).
    """
    try:
        with open(path, "rb") as log_file:
            log_file.seek(offset)
            data = log_file.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    found: list[tuple[int, dict[str, Any]]] = []
    position = offset
    for raw in data[: end + 1].splitlines(keepends=True):
        position += len(raw)
        fields = parse_progress(raw.decode(errors="replace"))
        if fields is not None:
            found.append((position, fields))
    return found, offset + end + 1


class JobReporter:
    """Records one attempt's lineage and metrics (once each) for its executor.

    Args:
        project: The attempt's project.
        job_execution_id: The job execution metrics and lineage attach to.
        engine: ``spark`` or ``flink``: the ``engine`` tag of every metric.
        control: The attempt's control directory (markers live there).
        log_path: The job's log (an unregistered dataset is noted there).
        metrics: Where metrics go; ``None`` records none.
        lineage: Where lineage goes; ``None`` records none.
    """

    def __init__(
        self,
        *,
        project: str,
        job_execution_id: int,
        engine: str,
        control: Path,
        log_path: Path,
        metrics: MetricService | None,
        lineage: LineageService | None,
    ) -> None:
        self.project = project
        self.job_execution_id = job_execution_id
        self.engine = engine
        self.control = control
        self.log_path = log_path
        self.metrics = metrics
        self.lineage = lineage
        self._consumed: int | None = None

    # -- lineage -------------------------------------------------------------------------------

    @property
    def lineage_recorded(self) -> bool:
        """Whether this attempt's lineage was recorded (by this or an earlier instance)."""
        return (self.control / LINEAGE_MARKER).exists()

    def record_lineage(self, job: PlanJob) -> None:
        """Record the plan's datasets as the attempt's lineage, unless that was done already."""
        if self.lineage is None or self.lineage_recorded:
            return
        inputs, outputs = plan_datasets(job)
        missing: list[str] = []
        while inputs or outputs:
            try:
                self.lineage.record_lineage(
                    self.project,
                    self.job_execution_id,
                    inputs=[LineageRef.dataset(name) for name in inputs],
                    outputs=[LineageRef.dataset(name) for name in outputs],
                )
                break
            except NotFoundError as exc:
                # Nothing was recorded: drop the unknown dataset and try the rest again.
                if exc.entity != "dataset" or exc.key in missing:
                    log.warning("lineage of job execution %s: %s", self.job_execution_id, exc)
                    return
                missing.append(str(exc.key))
                inputs = [name for name in inputs if name != exc.key]
                outputs = [name for name in outputs if name != exc.key]
            except TideflowError as exc:
                log.warning("lineage of job execution %s: %s", self.job_execution_id, exc)
                return
        for name in missing:
            self._note(
                f"[tideflow] dataset {name!r} is not registered: no lineage recorded for it "
                "(register it with client.datasets.register to see it in lineage)"
            )
        with contextlib.suppress(OSError):
            self.control.mkdir(parents=True, exist_ok=True)
            write_atomically(self.control / LINEAGE_MARKER, "")

    # -- metrics -------------------------------------------------------------------------------

    def log_metric(
        self,
        name: str,
        value: float,
        *,
        step: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Record one value of metric ``name`` for the job execution, tagged with the engine."""
        if self.metrics is None:
            return
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            log.warning(
                "job execution %s: metric %s=%r ignored", self.job_execution_id, name, value
            )
            return
        try:
            self.metrics.log_metric(
                self.project,
                name,
                float(value),
                step=step,
                tags={**dict(tags or {}), "engine": self.engine},
                job_execution_id=self.job_execution_id,
            )
        except TideflowError as exc:
            log.warning(
                "job execution %s: metric %s not recorded: %s", self.job_execution_id, name, exc
            )

    def record_lines(self, lines: Iterable[tuple[int, Mapping[str, Any]]], end: int) -> None:
        """Record the ``metric`` progress lines of the log read up to byte ``end``.

        Args:
            lines: ``(offset just past the line, fields)`` of each progress line read.
            end: The log offset read up to; remembered, so no line before it is recorded again.
        """
        consumed = self._load_consumed()
        if end <= consumed:
            return
        for offset, fields in lines:
            if offset <= consumed or fields.get("event") != METRIC_EVENT:
                continue
            step, tags = fields.get("step"), fields.get("tags")
            value: Any = fields.get("value")
            self.log_metric(
                str(fields.get("name")),
                value,  # checked in log_metric
                step=step if isinstance(step, int) and not isinstance(step, bool) else None,
                tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else None,
            )
        self._consumed = end
        with contextlib.suppress(OSError):
            self.control.mkdir(parents=True, exist_ok=True)
            write_atomically(self.control / METRIC_OFFSET, str(end))

    def _load_consumed(self) -> int:
        if self._consumed is None:
            try:
                self._consumed = int((self.control / METRIC_OFFSET).read_text().strip() or 0)
            except (OSError, ValueError):
                self._consumed = 0
        return self._consumed

    def _note(self, line: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "a") as out:
            out.write(line + "\n")
