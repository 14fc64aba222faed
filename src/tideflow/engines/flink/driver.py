"""The in-engine driver: builds and submits one attempt's PyFlink program.

Runs in PyFlink's own environment, started by the ``flink`` executor through Flink's client
(``bin/flink run -py``) with the attempt's working directory -- the extracted code package plus
``plan.json`` and ``attempt.json`` (:mod:`tideflow.domain.attempt`). It imports only Tideflow's
pure layers and PyFlink: no gRPC, no protobuf, no server connection.

Semantics (docs/engines.md):

- One ``TableEnvironment`` per job, in streaming mode for ``streaming=True`` jobs and batch mode
  otherwise. Flink restarts a failing job at most 3 times, 5 s apart (further retries are the
  scheduler's). Job ``config=`` keys containing a dot are Flink options (``parallelism.default``,
  ``restart-strategy.type``);
  ``checkpoint_interval`` (seconds, streaming jobs; default 5) sets
  ``execution.checkpointing.interval``.
- Processors (standard pickle, by reference) are opened, then called once each in topological
  order with ``(ctx, inputs)``: ``inputs`` are the upstream nodes' Tables. A processor returns a
  Table, SQL text (``ctx.sql`` rules: queries become Tables, ``INSERT`` joins the job, DDL runs
  at once) or None. Each Table output is also a temporary view named after its node, so SQL can
  say ``SELECT ... FROM <upstream node>``.
- Every insert (``ctx.insert`` or ``INSERT`` SQL) joins one statement set, submitted as one Flink
  job once every node ran; its Flink job id goes to ``flink_job.json`` in the control directory
  and to the log. ``close(ctx)`` runs after submission, in the client.
- A processor's exception fails the attempt: the traceback goes to the log and a one-line
  summary naming node and phase to ``result.json``; the exit code is 1.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys
import traceback
from typing import Any

from tideflow.compiler.plan import PlanJob, WorkflowPlan
from tideflow.domain.attempt import AttemptFiles, AttemptResult, AttemptSpec, write_atomically
from tideflow.engines.flink.context import FlinkContext, FlinkJobState
from tideflow.errors import UserCodeError
from tideflow.sdk.processor import Processor, as_processor

log = logging.getLogger("tideflow.flink.driver")
JOB_FILE = "flink_job.json"
JOB_ID_LINE = "[tideflow] flink job id: "
DEFAULT_CHECKPOINT_SECONDS = 5.0


class DriverError(UserCodeError):
    """A processor failed while the program was built (its node and phase in the message)."""


def main(workdir: str) -> int:
    """Build and submit the attempt's program; 0 once submitted, 1 when it could not be."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    files = AttemptFiles(workdir)
    if str(files.workdir) not in sys.path:
        sys.path.insert(0, str(files.workdir))
    try:
        job_id = _run(files)
    except DriverError as exc:
        log.error("%s\n%s", exc, exc.user_traceback.rstrip())
        write_atomically(files.result, AttemptResult("FAILED", str(exc)[:2000]).to_json())
        return 1
    except Exception as exc:  # the driver's edge: Flink's own errors end the attempt too
        log.error("building the Flink job failed:\n%s", traceback.format_exc())
        summary = f"building the Flink job failed: {type(exc).__name__}: {exc}"
        write_atomically(files.result, AttemptResult("FAILED", summary[:2000]).to_json())
        return 1
    print(f"{JOB_ID_LINE}{job_id}", flush=True)
    return 0


def _run(files: AttemptFiles) -> str:
    plan = WorkflowPlan.from_json(files.plan.read_text())
    spec = AttemptSpec.from_json(files.spec.read_text())
    job = plan.job(spec.job)
    t_env = _table_environment(job, spec)
    state = FlinkJobState(
        t_env=t_env,
        statements=t_env.create_statement_set(),
        streaming=job.streaming,
        project=spec.project,
        workflow=spec.workflow,
        job=spec.job,
        execution_id=spec.execution_id,
        attempt=spec.attempt,
        params=dict(spec.params),
        data_dir=spec.data_dir,
    )
    processors: dict[str, Processor] = {}
    loaded: dict[str, Any] = {}
    contexts = {node.name: FlinkContext(state, node.name, node.config) for node in job.nodes}
    for node in job.nodes:
        if node.processor is None:
            continue
        if node.processor not in loaded:
            loaded[node.processor] = _call(
                node.name, "unpickling", pickle.loads, plan.payloads[node.processor]
            )
        processors[node.name] = as_processor(loaded[node.processor])
    opened: list[str] = []
    try:
        for node in job.nodes:
            if node.name in processors:
                _call(node.name, "open", processors[node.name].open, contexts[node.name])
                opened.append(node.name)
        _build(job, processors, contexts)
        if state.inserts == 0:
            raise DriverError(
                f"flink job {spec.job!r} writes nothing: a node must insert into a sink "
                "(ctx.insert(table, 'sink') or an INSERT statement), or Flink has no job to run",
                user_traceback="",
            )
        result = state.statements.execute()
        job_id = str(result.get_job_client().get_job_id())
        write_atomically(files.control / JOB_FILE, json.dumps({"job_id": job_id}))
        log.info("submitted flink job %s for %s.%s", job_id, spec.workflow, spec.job)
        return job_id
    finally:
        for name in reversed(opened):
            try:
                _call(name, "close", processors[name].close, contexts[name])
            except DriverError as exc:
                log.error("%s\n%s", exc, exc.user_traceback.rstrip())


def _build(
    job: PlanJob, processors: dict[str, Processor], contexts: dict[str, FlinkContext]
) -> None:
    outputs: dict[str, Any] = {}
    for node in job.nodes:
        inputs = []
        for ref in node.inputs:
            upstream: Any = outputs.get(ref.node)
            producer = job.node(ref.node)
            inputs.append(upstream[ref.index] if producer.outputs > 1 else upstream)
        processor = processors.get(node.name)
        if processor is None:
            outputs[node.name] = inputs[0] if len(inputs) == 1 else inputs
            continue
        ctx = contexts[node.name]
        value = _call(node.name, "process", processor.process, ctx, inputs)
        if isinstance(value, str) or (
            isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value)
        ):
            value = _call(node.name, "process (SQL)", ctx.sql, value)
        outputs[node.name] = value
        for index, table in enumerate(value if node.outputs > 1 else (value,)):
            if _is_table(table):
                view = node.name if node.outputs == 1 else f"{node.name}_{index}"
                ctx.t_env.create_temporary_view(view, table)


def _table_environment(job: PlanJob, spec: AttemptSpec) -> Any:
    from pyflink.table import EnvironmentSettings, TableEnvironment  # type: ignore[import-not-found]

    settings = (
        EnvironmentSettings.in_streaming_mode()
        if job.streaming
        else EnvironmentSettings.in_batch_mode()
    )
    t_env = TableEnvironment.create(settings)
    config = t_env.get_config()
    config.set(
        "pipeline.name", f"tideflow {spec.workflow}.{spec.job} #{spec.execution_id}/{spec.attempt}"
    )
    if job.streaming:
        seconds = float(job.config.get("checkpoint_interval", DEFAULT_CHECKPOINT_SECONDS))
        config.set("execution.checkpointing.interval", f"{int(seconds * 1000)} ms")
    if not any(key.startswith("restart-strategy") for key in job.config):
        # Retries are the scheduler's (the job's retries=); Flink only rides out blips, so a
        # job failing for good ends FAILED instead of restarting for ever.
        config.set("restart-strategy.type", "fixed-delay")
        config.set("restart-strategy.fixed-delay.attempts", "3")
        config.set("restart-strategy.fixed-delay.delay", "5 s")
    for key, value in job.config.items():
        if "." in key:
            config.set(key, str(value).lower() if isinstance(value, bool) else str(value))
    return t_env


def _is_table(value: Any) -> bool:
    return type(value).__name__ == "Table" and type(value).__module__.startswith("pyflink")


def _call(node: str, phase: str, function: Any, *args: Any) -> Any:
    """Call user code; its exception becomes a :class:`DriverError` naming node and phase."""
    try:
        return function(*args)
    except Exception as exc:
        raise DriverError(
            f"node {node!r} failed in {phase}: {type(exc).__name__}: {exc}".splitlines()[0],
            user_traceback=traceback.format_exc(),
        ) from exc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
