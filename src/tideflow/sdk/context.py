"""What a running job gives its processors: :class:`JobContext`.

This is a protocol: the Python job runtime implements it. Processors depend only on this
interface, so they can be unit-tested with any object that provides the same members.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tideflow.domain.events import Event


@runtime_checkable
class JobContext(Protocol):
    """Identity, parameters and shortcuts of one attempt of one job.

    Events sent through :meth:`send_event` carry the execution id in their context, so the
    scheduler routes them (and the rules they fire) to this execution only.
    """

    @property
    def workflow(self) -> str:
        """The workflow's name."""

    @property
    def execution_id(self) -> int:
        """The workflow execution this attempt belongs to."""

    @property
    def job(self) -> str:
        """The job's name."""

    @property
    def attempt(self) -> int:
        """The attempt number, from 1."""

    @property
    def node(self) -> str:
        """The name of the node whose processor is being called."""

    @property
    def model(self) -> str | None:
        """The model the node works on (``tide.train(..., model=...)``), if any."""

    @property
    def dataset(self) -> str | None:
        """The dataset the node reads or writes, if any."""

    @property
    def trigger(self) -> Event | None:
        """The event that fired the rule which started this attempt (a :class:`tideflow.Event`).

        ``None`` only when nothing fired: a manual start (``tide.start``, ``job restart``), or
        a job that started with an execution ``tide.start`` started. Jobs that start with an
        execution a ``start_on`` rule started get that rule's event; a retry keeps the
        trigger of the attempt it retries. A validate job started by
        ``on_model_version(..., GENERATED)`` reads the version it was started for from it::

            event = ctx.trigger
            if event is not None:
                version = json.loads(event.value)["version"]  # {model, version, status, previous}

        For a periodic rule it is the ``PERIODIC`` timer event; for ``after`` / ``with_start``
        an upstream's ``JOB_STATUS_CHANGED`` event (``context``: execution id, attempt).
        """

    @property
    def triggers(self) -> tuple[Event, ...]:
        """Every event the rule held on when it fired, oldest first; :attr:`trigger` is last.

        An ``all_of`` (and ``after`` with several upstreams) holds one event per part, so they
        are all here; empty when nothing fired.
        """

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters the execution was started with."""

    @property
    def context(self) -> str | None:
        """The context the execution serves, in a ``per_context`` workflow; else ``None``.

        The context an event named when it started the execution on demand (an hour, a
        customer...), or the one given to ``tide.start(..., context=...)``.
        """

    @property
    def data_dir(self) -> Path:
        """The project's data directory: where its jobs hand files to each other."""

    @property
    def config(self) -> Mapping[str, Any]:
        """The config of the node being run (its job's config beneath it)."""

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records go to this attempt's log."""

    @property
    def client(self) -> Any:
        """The Tideflow client, scoped to the workflow's project."""

    def send_event(
        self, key: str, value: str, *, event_type: str = ..., scope: str = ..., **kwargs: Any
    ) -> Any:
        """Send an event to this execution, or (``scope="project"``) to the whole project.

        The default ``scope="execution"`` stamps the event with this execution's id: it
        reaches this execution only. ``scope="project"`` reaches other workflows' rules and
        their ``start_on`` rules, as an event sent from outside does.
        """

    def listen(self, **filters: Any) -> Iterator[Any]:
        """Listen to the project's events (see the client's ``events.listen``)."""

    def log_metric(self, name: str, value: float, **kwargs: Any) -> None:
        """Log a metric attached to this job execution."""

    def record_input(self, ref: Any) -> None:
        """Declare that the job read ``ref``; ``log_model`` records it as lineage.

        ``ref`` is a ``LineageRef`` of a dataset version with its stream offset range, or a
        dataset name. Sources call it as they read; the next version of a model logged
        without ``inputs=`` names what was declared since that model's previous version.
        """

    def log_model(self, obj: Any, *, model: str, **kwargs: Any) -> Any:
        """Save ``obj`` to the blob store and register a GENERATED version of ``model``."""

    def load_model(self, model: str, **selector: Any) -> Any:
        """Load a version of ``model`` chosen by ``status=``, ``alias=`` or ``version=``."""
