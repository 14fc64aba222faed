"""The :class:`~tideflow.sdk.context.JobContext` a Python job's processors receive.

One :class:`RuntimeContext` per node (``node``, ``model``, ``dataset`` and ``config`` differ);
they share one :class:`AttemptState`: the attempt's identity and parameters, and the client,
which is connected on first use -- a job that never touches ``ctx.client`` never pays for a
connection. The client is a remote one to the server named in the attempt
(``$TIDEFLOW_SERVER`` with ``$TIDEFLOW_TOKEN``, set by the executor), or an in-process one on
the store when the executor knew no server (embedded use and tests).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from tideflow.compiler.plan import PlanJob, PlanNode
from tideflow.domain.attempt import AttemptSpec
from tideflow.errors import FailedPreconditionError
from tideflow.settings import SERVER_VARIABLE, TOKEN_VARIABLE

ONLINE_LEARNING = (
    "ctx.{name} is not available yet: model shortcuts come with the online-learning issue; "
    "use ctx.client.models meanwhile"
)


class AttemptState:
    """What every node's context of one attempt shares."""

    def __init__(self, spec: AttemptSpec, job: PlanJob) -> None:
        self.spec = spec
        self.job = job
        self.stopping = threading.Event()
        """Set when the attempt is asked to stop (SIGTERM)."""
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The project's client, connected on first use."""
        with self._lock:
            if self._client is None:
                from tideflow.client import connect

                spec = self.spec
                url = os.environ.get(SERVER_VARIABLE) or spec.server_url or spec.db_url
                if not url:
                    raise FailedPreconditionError(
                        "this job knows no Tideflow server to connect to "
                        f"(${SERVER_VARIABLE} is not set)"
                    )
                self._client = connect(
                    url, project=spec.project, token=os.environ.get(TOKEN_VARIABLE)
                )
            return self._client

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
    def trigger(self) -> Any:
        """The event that started this attempt: ``None`` until the scheduler passes it on."""
        return None

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters the execution was started with."""
        return self._state.spec.params

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
        **kwargs: Any,
    ) -> Any:
        """Send an event whose context names this execution, job and attempt.

        The scheduler routes it (and the rules it fires) to this execution only. The sender
        defaults to ``<workflow>.<job>``.
        """
        spec = self._state.spec
        stamped = {
            **(context or {}),
            "execution_id": spec.execution_id,
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

    def log_model(self, obj: Any, *, model: str, **kwargs: Any) -> Any:
        """Not available yet (online-learning issue)."""
        raise NotImplementedError(ONLINE_LEARNING.format(name="log_model"))

    def load_model(self, model: str, **selector: Any) -> Any:
        """Not available yet (online-learning issue)."""
        raise NotImplementedError(ONLINE_LEARNING.format(name="load_model"))

    def __repr__(self) -> str:
        spec = self._state.spec
        return (
            f"RuntimeContext({spec.workflow}.{spec.job}, execution={spec.execution_id}, "
            f"attempt={spec.attempt}, node={self._node.name!r})"
        )
