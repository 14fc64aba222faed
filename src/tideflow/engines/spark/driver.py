"""The Spark driver: what ``spark-submit`` runs for one attempt of a ``spark`` job.

Entry point :func:`main` (``tideflow.engines.spark.driver:main``, the generator's ``runtime``),
called with the attempt's working directory -- the extracted code package plus the control files
of :mod:`tideflow.domain.attempt` (``attempt.json``, ``plan.json``) that the ``spark`` executor
wrote. It imports nothing of Tideflow's gRPC or store stack: only the plan, the attempt files,
the processor protocol, cloudpickle and PySpark.

Steps, each announced by a progress line on stdout (:mod:`tideflow.domain.progress`) that the
executor reads back from the log:

1. ``started`` (the driver's pid): processors are unpickled, the ``SparkSession`` is built
   (``spark-submit`` gives the master and conf), ``app`` carries the Spark application id;
   every processor's ``open(ctx)`` runs; then ``running``.
2. The nodes run once each in topological order: ``process(ctx, inputs)`` gets one DataFrame per
   data edge and returns a DataFrame (or, for a sink, anything). ``read_dataset`` /
   ``write_dataset`` nodes without a processor read / write from their config.
3. A **batch** job is done when the last node returns: Spark evaluates lazily, so the sinks
   must write (a built-in ``write_dataset``, or the processor calls ``df.write``). A
   **streaming** job runs until every query it started ends (``trigger={"availableNow":
   True}`` queries end by themselves), a query fails, or the attempt is stopped; its queries
   are started by a built-in ``write_dataset`` (which needs ``checkpoint``) or by a processor
   calling ``df.writeStream...start()``. A streaming job that started no query fails.
4. ``close(ctx)`` runs for every opened processor (last first); ``result`` says FINISHED /
   FAILED (with a one-line error naming node and phase) / STOPPED; the session stops.

Metrics go out as ``metric`` progress lines too (the executor records them for the job
execution): a streaming job reports each micro-batch of each query as it sees it
(``records_in`` = the batch's ``numInputRows`` and ``rows_per_second`` = its
``processedRowsPerSecond``, step = the batch id, tag ``query``); a batch job that ran to its end
reports its totals over every stage of the application (``records_in`` / ``bytes_in`` read from
sources, ``records_out`` / ``bytes_out`` written by sinks). The totals come from the driver's own
status store (the data behind Spark's UI and REST status API, which is there even with the UI
off); where a Spark version does not offer it, the job logs one warning and reports no totals.

SIGTERM (the executor's STOP) sets ``ctx.stopping``; a streaming job then stops its queries
gracefully, a batch job is interrupted (``JobStopped``) and its Spark jobs cancelled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tideflow.compiler.plan import PlanJob, PlanNode, WorkflowPlan
from tideflow.domain.attempt import AttemptFiles, AttemptSpec
from tideflow.domain.graph import NodeKind
from tideflow.domain.progress import metric_line, progress_line
from tideflow.engines.spark.context import SparkJobContext
from tideflow.sdk.processor import Processor, as_processor

log = logging.getLogger("tideflow.spark")
MAX_ERROR = 2000
POLL_SECONDS = 1
LISTENER_DRAIN_MS = 30_000


class JobStopped(BaseException):
    """Raised in the main thread of a batch job when the attempt receives SIGTERM."""


class NodeFailed(Exception):
    """A node failed; the message names it and the phase (``open``, ``process``, ...)."""


def report(event: str, **fields: Any) -> None:
    """Write a progress line to stdout (the executor reads it back from the log)."""
    sys.stdout.write(progress_line(event, **fields))
    sys.stdout.flush()


def report_metric(
    name: str, value: float, *, step: int | None = None, tags: Mapping[str, str] | None = None
) -> None:
    """Write a ``metric`` progress line to stdout (the executor records it)."""
    sys.stdout.write(metric_line(name, value, step=step, tags=tags))
    sys.stdout.flush()


def main(workdir: str) -> int:
    """Run the attempt prepared in ``workdir``; return the exit code (1 when it FAILED)."""
    _configure_logging()
    files = AttemptFiles(workdir)
    spec = AttemptSpec.from_json(files.spec.read_text())
    plan = WorkflowPlan.from_json(files.plan.read_text())
    job = plan.job(spec.job)
    sys.path.insert(0, str(files.workdir))
    report("started", pid=os.getpid())
    stopping = threading.Event()
    stopper = _Stopper(stopping, raise_once=not job.streaming)
    signal.signal(signal.SIGTERM, stopper)
    runner: _Runner | None = None
    failure: BaseException | None = None
    try:
        runner = _Runner(spec, plan, job, stopping)
        runner.open()
        report("running")
        runner.run()
        if not job.streaming:
            runner.report_totals()
    except BaseException as exc:  # the driver's edge: every outcome is reported
        failure = exc
    stopper.closing = True
    if runner is not None:
        close_failure = runner.close()
        failure = failure or close_failure
    status, error = _outcome(failure, stopping)
    report("result", status=status, error=error)
    if runner is not None:
        runner.shutdown()
    return 1 if status == "FAILED" else 0


class _Stopper:
    """The SIGTERM handler: sets the stop flag; in a batch job raises :class:`JobStopped` once."""

    def __init__(self, stopping: threading.Event, *, raise_once: bool) -> None:
        self.stopping = stopping
        self.raise_once = raise_once
        self.raised = False
        self.closing = False

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        self.stopping.set()
        log.info("stop requested (SIGTERM)")
        if self.raise_once and not self.raised and not self.closing:
            self.raised = True
            raise JobStopped()


class _Runner:
    """The session, processors and node outputs of one attempt."""

    def __init__(
        self, spec: AttemptSpec, plan: WorkflowPlan, job: PlanJob, stopping: threading.Event
    ) -> None:
        import cloudpickle

        self.job = job
        self.stopping = stopping
        self.processors: dict[str, Processor] = {}
        loaded: dict[str, Any] = {}
        for node in job.nodes:
            if node.processor is None:
                continue
            if node.processor not in loaded:
                blob = plan.payloads[node.processor]
                loaded[node.processor] = _call(node.name, "unpickling", cloudpickle.loads, blob)
            self.processors[node.name] = as_processor(loaded[node.processor])
        from pyspark.sql import SparkSession

        name = f"tideflow:{spec.workflow}.{spec.job}#{spec.attempt}"
        self.spark = SparkSession.builder.appName(name).getOrCreate()
        context = self.spark.sparkContext
        report("app", app_id=context.applicationId, master=context.master)
        self.contexts = {
            node.name: SparkJobContext(
                spark=self.spark,
                workflow=spec.workflow,
                execution_id=spec.execution_id,
                job=spec.job,
                attempt=spec.attempt,
                node=node.name,
                streaming=job.streaming,
                params=dict(spec.params),
                config=dict(node.config),
                model=node.model,
                dataset=node.dataset,
                stopping=stopping,
                data_location=spec.data_dir,
            )
            for node in job.nodes
        }
        self.opened: list[str] = []
        self.queries: dict[str, Any] = {}
        self.batches: dict[str, int] = {}

    def open(self) -> None:
        for node in self.job.nodes:
            if node.name in self.processors:
                processor = self.processors[node.name]
                _call(node.name, "open", processor.open, self.contexts[node.name])
                self.opened.append(node.name)

    def run(self) -> None:
        outputs: dict[str, Any] = {}
        for node in self.job.nodes:
            inputs = []
            for ref in node.inputs:
                value: Any = outputs.get(ref.node)
                producer = self.job.node(ref.node)
                inputs.append(value[ref.index] if producer.outputs > 1 else value)
            processor = self.processors.get(node.name)
            if processor is not None:
                outputs[node.name] = _call(
                    node.name, "process", processor.process, self.contexts[node.name], inputs
                )
            elif node.kind is NodeKind.READ_DATASET:
                outputs[node.name] = _call(node.name, "read", self._read, node)
            elif node.kind is NodeKind.WRITE_DATASET:
                outputs[node.name] = _call(node.name, "write", self._write, node, inputs[0])
            else:
                outputs[node.name] = inputs[0] if len(inputs) == 1 else inputs
            if _is_query(outputs[node.name]):  # remembered: an ended query leaves streams.active
                self.queries[str(outputs[node.name].id)] = outputs[node.name]
        if self.job.streaming:
            self._await_queries()

    def _read(self, node: PlanNode) -> Any:
        config = node.config
        reader = self.spark.readStream if self.job.streaming else self.spark.read
        reader = reader.format(config.get("format", "parquet")).options(
            **_strings(config.get("options"))
        )
        if config.get("schema"):
            reader = reader.schema(config["schema"])
        return reader.load(config["path"])

    def _write(self, node: PlanNode, frame: Any) -> Any:
        config = node.config
        options = _strings(config.get("options"))
        partition_by = list(config.get("partition_by", ()))
        if not self.job.streaming:
            writer = frame.write.format(config.get("format", "parquet"))
            writer = writer.mode(config.get("mode", "overwrite")).options(**options)
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(config["path"])
            return None
        stream = frame.writeStream.format(config.get("format", "parquet"))
        stream = stream.outputMode(config.get("output_mode", "append")).options(**options)
        stream = stream.option("checkpointLocation", config["checkpoint"])
        if partition_by:
            stream = stream.partitionBy(*partition_by)
        stream = stream.queryName(f"{self.job.name}.{node.name}")
        if config.get("trigger"):
            stream = stream.trigger(**config["trigger"])
        return stream.start(config["path"])

    def _await_queries(self) -> None:
        """Wait until every query ended, one failed, or a stop stopped them."""
        from pyspark.errors import StreamingQueryException

        streams = self.spark.streams
        if not streams.active:
            # Queries that already ended count (an availableNow query may be done by now): a
            # past termination returns at once, a past failure raises.
            try:
                ended = streams.awaitAnyTermination(POLL_SECONDS)
            except StreamingQueryException as exc:
                raise NodeFailed(f"a streaming query failed: {_first_line(exc)}") from exc
            if ended:
                self.report_progress()
                return
            raise NodeFailed(
                "the streaming job started no query (or its queries ended at once): end it "
                "with a write_dataset node (config path + checkpoint) or start "
                "df.writeStream...start() in a processor"
            )
        for query in streams.active:
            report("query", id=str(query.id), name=query.name)
            self.queries[str(query.id)] = query
        while not self.stopping.is_set():
            try:
                if streams.awaitAnyTermination(POLL_SECONDS):
                    streams.resetTerminated()
            except StreamingQueryException as exc:
                raise NodeFailed(f"a streaming query failed: {_first_line(exc)}") from exc
            finally:
                self.report_progress()
            if not streams.active:
                return
        self.report_progress()
        for query in streams.active:
            log.info("stopping streaming query %s (%s)", query.name, query.id)
            with contextlib.suppress(Exception):
                query.stop()
        self.report_progress()  # the batches that completed while the queries stopped

    def report_progress(self) -> None:
        """Report the micro-batches of every known query not reported yet (as metrics).

        Never raises: it runs beside the query's own outcome, which must not be masked.
        """
        try:
            for query in list(self.spark.streams.active):
                self.queries.setdefault(str(query.id), query)
        except Exception:  # the session going away: report what is known
            log.debug("no active queries to look at", exc_info=True)
        for key, query in self.queries.items():
            try:
                progresses = list(query.recentProgress)
                tags = {"query": str(query.name or key)}
            except Exception:  # a query torn down under us: its batches are lost, not the job
                log.debug("no progress of query %s", key, exc_info=True)
                continue
            for progress in progresses:
                batch = int(progress.get("batchId", -1))
                if batch <= self.batches.get(key, -1):
                    continue
                self.batches[key] = batch
                rows = int(progress.get("numInputRows") or 0)
                report_metric("records_in", rows, step=batch, tags=tags)
                rate = progress.get("processedRowsPerSecond")
                if rate is not None and rate == rate:  # NaN before the first rows
                    report_metric("rows_per_second", float(rate), step=batch, tags=tags)

    def report_totals(self) -> None:
        """Report a batch job's totals over every stage of the application (as metrics)."""
        try:
            totals = _stage_totals(self.spark)
        except Exception as exc:  # an internal API: its absence costs the totals, not the job
            log.warning("no record counts for this Spark version: %s", _first_line(exc))
            return
        for name, value in totals.items():
            report_metric(name, value)

    def close(self) -> BaseException | None:
        """Close every opened processor (last first); return the first failure, if any."""
        first: BaseException | None = None
        for name in reversed(self.opened):
            try:
                _call(name, "close", self.processors[name].close, self.contexts[name])
            except JobStopped:
                continue
            except NodeFailed as exc:
                first = first or exc
        self.opened.clear()
        return first

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.spark.sparkContext.cancelAllJobs()
        with contextlib.suppress(Exception):
            self.spark.stop()


def _is_query(value: Any) -> bool:
    from pyspark.sql.streaming.query import StreamingQuery

    return isinstance(value, StreamingQuery)


def _stage_totals(spark: Any) -> dict[str, int]:
    """Records and bytes read and written, summed over the application's stages.

    Read from the driver's ``AppStatusStore`` (what the UI and REST status API serve; it is
    kept with the UI off) through py4j: every stage attempt, skipped ones count zero. The store
    is fed by Spark's asynchronous listener bus, so the last stage's end may still be queued
    when the last action returns: the bus is drained first (with a deadline).
    """
    gateway = spark.sparkContext._gateway
    context = spark.sparkContext._jsc.sc()
    try:
        context.listenerBus().waitUntilEmpty(LISTENER_DRAIN_MS)
    except Exception as exc:  # not drained in time: totals may miss the last stage
        log.warning("Spark's listener bus was not drained: %s", _first_line(exc))
    store = context.statusStore()
    stages = store.stageList(None, False, False, gateway.new_array(gateway.jvm.double, 0), None)
    totals = {"records_in": 0, "records_out": 0, "bytes_in": 0, "bytes_out": 0}
    iterator = stages.iterator()
    while iterator.hasNext():
        stage = iterator.next()
        totals["records_in"] += int(stage.inputRecords())
        totals["records_out"] += int(stage.outputRecords())
        totals["bytes_in"] += int(stage.inputBytes())
        totals["bytes_out"] += int(stage.outputBytes())
    return totals


def _call(node: str, phase: str, function: Callable[..., Any], *args: Any) -> Any:
    """Call user code (or a built-in node); failures become :class:`NodeFailed` naming both."""
    try:
        return function(*args)
    except JobStopped:
        raise
    except Exception as exc:
        log.error("node %r failed in %s:\n%s", node, phase, traceback.format_exc().rstrip())
        raise NodeFailed(
            f"node {node!r} failed in {phase}: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def _outcome(failure: BaseException | None, stopping: threading.Event) -> tuple[str, str | None]:
    if isinstance(failure, JobStopped) or (failure is None and stopping.is_set()):
        return "STOPPED", None
    if failure is None:
        return "FINISHED", None
    if isinstance(failure, NodeFailed):
        return "FAILED", _one_line(str(failure))
    log.error("the driver failed:\n%s", "".join(traceback.format_exception(failure)))
    return "FAILED", _one_line(f"{type(failure).__name__}: {_first_line(failure)}")


def _strings(options: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(options or {}).items()}


def _first_line(exc: BaseException) -> str:
    """The useful head of an exception's text (JVM errors carry whole stack traces)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 3] + "..."


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


if __name__ == "__main__":  # spark-submit path/to/driver.py WORKDIR
    sys.exit(main(sys.argv[1]))
