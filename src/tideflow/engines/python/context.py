"""The :class:`~tideflow.sdk.context.JobContext` a Python job's processors receive.

One :class:`RuntimeContext` per node (``node``, ``model``, ``dataset`` and ``config`` differ);
they share one :class:`AttemptState`: the attempt's identity and parameters, and the client,
which is connected on first use -- a job that never touches ``ctx.client`` never pays for a
connection. The client is a remote one to the server named in the attempt
(``$TIDEFLOW_SERVER`` with ``$TIDEFLOW_TOKEN``, set by the executor), or an in-process one on
the store when the executor knew no server (embedded use and tests).

Models: ``ctx.log_model`` and ``ctx.load_model`` are :mod:`tideflow.client.model_artifact`
bound to the attempt (its job execution for lineage, one model cache for all its nodes).
What a model was trained on comes from ``inputs=`` or, when that is not given, from what the
job's sources declared with ``ctx.record_input(LineageRef.dataset(name, version,
start_offset=, end_offset=))`` *since the previous version of that model* in this attempt: the
attempt keeps one entry per dataset version, widening its offset range as more is read, and
starts afresh for a model each time a version of it is logged. So a batch trainer's one version
names everything it read, and each version a streaming trainer logs names the range read for
it alone (its own lineage record, see :mod:`tideflow.metadata.measurement`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tideflow.compiler.plan import PlanJob, PlanNode
from tideflow.domain.attempt import AttemptSpec
from tideflow.domain.events import Event
from tideflow.domain.lineage import LineageRef
from tideflow.domain.model import ModelVersion
from tideflow.errors import FailedPreconditionError, InvalidArgumentError
from tideflow.settings import DATA_DIR_VARIABLE, SERVER_VARIABLE, TOKEN_VARIABLE

SCOPES = ("execution", "project")
"""Where an event a job sends goes: its own execution, or the whole project."""
SERVER_RETRY_SECONDS = 120.0
"""How long a job's calls wait out an unavailable server: a job outlives a server restart
(its executor re-attaches to it), and a restart on a loaded machine takes 5-15 s."""


def _lower(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _upper(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _merged(refs: dict[tuple[str, str, int | None], LineageRef], ref: LineageRef) -> None:
    """Add ``ref`` to ``refs``: one entry per (kind, name, version), its range widened."""
    key = (ref.kind.value, ref.name, ref.version)
    known = refs.get(key)
    if known is not None:
        ref = LineageRef(
            ref.kind,
            ref.name,
            ref.version,
            _lower(known.start_offset, ref.start_offset),
            _upper(known.end_offset, ref.end_offset),
        )
    refs[key] = ref


class InputRecorder:
    """What an attempt read: in all, and per model since its last version was logged.

    Memory stays bounded by the number of dataset versions read (times the models logged),
    however long a streaming attempt runs: ranges are widened in place, never listed.
    """

    def __init__(self) -> None:
        self._all: dict[tuple[str, str, int | None], LineageRef] = {}
        self._pending: dict[str, dict[tuple[str, str, int | None], LineageRef]] = {}
        self._lock = threading.Lock()

    def record(self, ref: LineageRef | str) -> None:
        """Add ``ref`` (a dataset name stands for its current version)."""
        if isinstance(ref, str):
            ref = LineageRef.dataset(ref)
        if not isinstance(ref, LineageRef):
            raise InvalidArgumentError(
                f"record_input takes a LineageRef or a dataset name, got {ref!r}", field="ref"
            )
        with self._lock:
            _merged(self._all, ref)
            for pending in self._pending.values():
                _merged(pending, ref)

    def refs(self) -> list[LineageRef]:
        """Everything recorded in the attempt, in first-recorded order."""
        with self._lock:
            return list(self._all.values())

    def take(self, model: str) -> list[LineageRef]:
        """What was recorded since the last ``take(model)`` (everything, the first time).

        The next version of ``model`` starts from nothing.
        """
        with self._lock:
            taken = self._pending.get(model, self._all)
            self._pending[model] = {}
            return list(taken.values())


class AttemptState:
    """What every node's context of one attempt shares."""

    def __init__(self, spec: AttemptSpec, job: PlanJob) -> None:
        self.spec = spec
        self.job = job
        self.stopping = threading.Event()
        """Set when the attempt is asked to stop (SIGTERM)."""
        self._client: Any = None
        self._lock = threading.Lock()
        self._loader: Any = None
        self.inputs = InputRecorder()
        """What the job's sources declared they read (``ctx.record_input``)."""

    @property
    def client(self) -> Any:
        """The project's client, connected on first use."""
        with self._lock:
            if self._client is None:
                from tideflow.client import connect

                spec = self.spec
                url = os.environ.get(SERVER_VARIABLE) or spec.server_url
                if not url:
                    raise FailedPreconditionError(
                        "this job knows no Tideflow server to connect to "
                        f"(${SERVER_VARIABLE} is not set)"
                    )
                self._client = connect(
                    url,
                    project=spec.project,
                    token=os.environ.get(TOKEN_VARIABLE),
                    retry_for=SERVER_RETRY_SECONDS,
                )
            return self._client

    @property
    def loader(self) -> Any:
        """The attempt's :class:`~tideflow.client.model_artifact.ModelLoader` (one cache)."""
        client = self.client
        with self._lock:
            if self._loader is None:
                from tideflow.client.model_artifact import ModelLoader

                self._loader = ModelLoader(client)
            return self._loader

    def close(self) -> None:
        """Close the client, if one was opened."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class RuntimeContext:
    """The context of one node of a running Python job (implements ``JobContext``)."""

    def __init__(self, state: AttemptState, node: PlanNode) -> None:
        self._state = state
        self._node = node
        self._config = {**state.job.config, **node.config}
        self._logger = logging.getLogger(f"tideflow.job.{state.spec.job}.{node.name}")

    @property
    def workflow(self) -> str:
        """The workflow's name."""
        return self._state.spec.workflow

    @property
    def execution_id(self) -> int:
        """The workflow execution this attempt belongs to."""
        return self._state.spec.execution_id

    @property
    def job(self) -> str:
        """The job's name."""
        return self._state.spec.job

    @property
    def attempt(self) -> int:
        """The attempt number, from 1."""
        return self._state.spec.attempt

    @property
    def job_execution_id(self) -> int:
        """The job execution of this attempt (what metrics and lineage attach to)."""
        return self._state.spec.job_execution_id

    @property
    def node(self) -> str:
        """The node whose processor is being called."""
        return self._node.name

    @property
    def model(self) -> str | None:
        """The model the node works on, if any."""
        return self._node.model

    @property
    def dataset(self) -> str | None:
        """The dataset the node reads or writes, if any."""
        return self._node.dataset

    @property
    def trigger(self) -> Event | None:
        """The event that started this attempt (the newest of :attr:`triggers`), or ``None``.

        ``None`` only when nothing fired: a manual start, or a job that started with an
        execution ``tide.start`` started.
        """
        triggers = self._state.spec.triggers
        return triggers[-1] if triggers else None

    @property
    def triggers(self) -> tuple[Event, ...]:
        """Every event the rule held on when it fired, oldest first (empty: nothing fired).

        One per part of an ``all_of`` (``after(job, a, b)``: the FINISHED events of both).
        """
        return self._state.spec.triggers

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters the execution was started with."""
        return self._state.spec.params

    @property
    def context(self) -> str | None:
        """The context the execution serves (``per_context`` workflows), else ``None``."""
        return self._state.spec.context

    @property
    def data_dir(self) -> Path:
        """The project's data directory: where its jobs hand files to each other.

        The only place on the server's disk a job is given (not the home, the database or
        the blobs). ``$TIDEFLOW_DATA_DIR`` in a job's environment; made if missing.

        Raises:
            FailedPreconditionError: The executor gave this attempt no data directory.
        """
        text = self._state.spec.data_dir or os.environ.get(DATA_DIR_VARIABLE)
        if not text:
            raise FailedPreconditionError(
                f"this job has no data directory (${DATA_DIR_VARIABLE} is not set)"
            )
        path = Path(text)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def config(self) -> Mapping[str, Any]:
        """The node's config over its job's config."""
        return self._config

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records go to the attempt's log."""
        return self._logger

    @property
    def client(self) -> Any:
        """The Tideflow client of the workflow's project (connected on first use)."""
        return self._state.client

    @property
    def stopping(self) -> bool:
        """Whether the attempt was asked to stop: a streaming loop may check it to end early."""
        return self._state.stopping.is_set()

    def send_event(
        self,
        key: str,
        value: str,
        *,
        event_type: str = "UNDEFINED",
        context: Mapping[str, Any] | None = None,
        scope: str = "execution",
        **kwargs: Any,
    ) -> Any:
        """Send an event whose context names this job and attempt.

        ``scope="execution"`` (the default) also names this execution: the scheduler routes
        it, and the rules it fires, to this execution only. ``scope="project"`` leaves the
        execution out (it is kept as ``source_execution_id``), so the event reaches the
        project's other workflows like one sent from outside: their rules listening to its key
        and their ``start_on`` rules. The sender defaults to ``<workflow>.<job>``.

        Raises:
            InvalidArgumentError: ``scope`` is neither ``"execution"`` nor ``"project"``.
        """
        spec = self._state.spec
        if scope not in SCOPES:
            raise InvalidArgumentError(
                f"scope must be one of {', '.join(SCOPES)} (got {scope!r})", field="scope"
            )
        where = "execution_id" if scope == "execution" else "source_execution_id"
        stamped = {
            **(context or {}),
            where: spec.execution_id,
            "job": spec.job,
            "attempt": spec.attempt,
        }
        kwargs.setdefault("sender", f"{spec.workflow}.{spec.job}")
        return self.client.events.send(key, value, event_type=event_type, context=stamped, **kwargs)

    def listen(self, **filters: Any) -> Iterator[Any]:
        """Listen to the project's events (``client.events.listen(**filters)``)."""
        listener: Iterator[Any] = self.client.events.listen(**filters)
        return listener

    def log_metric(self, name: str, value: float, **kwargs: Any) -> None:
        """Log a metric attached to this job execution."""
        kwargs.setdefault("job_execution_id", self._state.spec.job_execution_id)
        self.client.metrics.log(name, value, **kwargs)

    def record_input(self, ref: LineageRef | str) -> None:
        """Declare that this job read ``ref`` (a dataset version, with a stream offset range).

        Sources call it as they read; ``log_model`` records what was declared since the
        model's previous version as the inputs of the version it registers. Repeated calls for
        one dataset version widen its range.
        """
        self._state.inputs.record(ref)

    @property
    def recorded_inputs(self) -> list[LineageRef]:
        """What the job's sources declared with :meth:`record_input` in this attempt so far."""
        return self._state.inputs.refs()

    def log_model(
        self,
        obj: Any,
        *,
        model: str,
        flavour: str | None = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        inputs: Sequence[LineageRef | str] | None = None,
        **kwargs: Any,
    ) -> ModelVersion:
        """Save ``obj`` to the blob store as a GENERATED version of ``model``, with lineage.

        Args:
            obj: The model object.
            model: The registered model (created on first use).
            flavour: ``sklearn``, ``river``, ``tideflow`` or ``pickle``; inferred when ``None``.
            metrics: Numbers measured when it was made.
            params: Its training parameters (JSON-serialisable).
            inputs: What it was trained on. When ``None``: what :meth:`record_input` declared
                since the previous version of ``model`` in this attempt (since the attempt
                started, for its first version).
            **kwargs: ``tags=``, ``description=``.

        Returns:
            The new model version.
        """
        from tideflow.client.model_artifact import save_model

        declared = self._state.inputs.take(model)  # a version is logged: start afresh
        chosen = declared if inputs is None else list(inputs)
        return save_model(
            self.client,
            obj,
            model=model,
            flavour=flavour,
            metrics=metrics,
            params=params,
            job_execution_id=self._state.spec.job_execution_id,
            inputs=chosen,
            **kwargs,
        )

    def load_model(
        self,
        model: str,
        *,
        version: int | None = None,
        status: str | None = None,
        alias: str | None = None,
    ) -> Any:
        """The object of a version of ``model`` (the DEPLOYED one when no selector is given).

        Loaded objects are cached by ``(model, version)`` for the attempt.
        """
        loaded = self._state.loader.load(model, version=version, status=status, alias=alias)
        return loaded.model

    def __repr__(self) -> str:
        spec = self._state.spec
        return (
            f"RuntimeContext({spec.workflow}.{spec.job}, execution={spec.execution_id}, "
            f"attempt={spec.attempt}, node={self._node.name!r})"
        )
