"""The server's Prometheus metrics (docs/operations.md lists every family and alerts on them).

* measured where they happen: RPC counts and latency, events appended, open listeners, the
  scheduler's decision latency (a hook on the dispatcher) and job durations (a job-end
  listener of the execution service: each server counts the attempts it recorded);
* counted from the store at each scrape (:mod:`tideflow.store.census`): attempts not ended
  by status and executor, outbox commands waiting per executor, model versions by status and the
  dispatcher's lag -- the same answer from every server on one store;
* prometheus_client's process, platform (Python) and garbage-collector collectors.

A store that cannot be read during a scrape gives ``tideflow_store_up 0`` and none of the
counted families, never a failed scrape: that is the moment the other families matter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tideflow.domain.metadata import JobExecution
    from tideflow.metadata.workflow import ExecutionService
    from tideflow.scheduler.runtime import Scheduler
    from tideflow.store import Store

log = logging.getLogger(__name__)

DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds from an event's commit to the scheduler's decisions on it."""
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0)
"""Seconds an attempt ran: from seconds (a validation) to a day (a streaming job's run)."""
PYTHON_EXECUTORS = ("local", "ray")
"""Executors that run the ``python`` engine; the others are named after their engine."""


def engine_of(executor: str) -> str:
    """The engine of an executor's jobs: ``python`` on local and Ray, else the executor's."""
    return "python" if executor in PYTHON_EXECUTORS else executor


class ServerMetrics:
    """One registry per server (so tests can run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc_calls = Counter(
            "tideflow_rpc_calls",
            "RPCs served, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "tideflow_rpc_seconds",
            "RPC latency",
            ["method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self._rpc_series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.events = Counter(
            "tideflow_events_appended",
            "Events committed to the log by this server",
            registry=self.registry,
        )
        self.listeners = Gauge(
            "tideflow_listeners", "Open Listen streams (event listeners)", registry=self.registry
        )
        self.listeners_max = Gauge(
            "tideflow_listeners_max",
            "Most Listen streams this server accepts at once (--max-listeners)",
            registry=self.registry,
        )
        self.leader = Gauge(
            "tideflow_leader",
            "1 while this server runs the scheduler (it leads its cluster, or it is the one "
            "server of its SQLite store), else 0",
            registry=self.registry,
        )
        self.leadership_changes = Counter(
            "tideflow_leadership_changes",
            "Times this server became its cluster's leader or stopped being it",
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "tideflow_scheduler_decision_seconds",
            "Seconds from the commit of an event to the commit of the scheduler's decisions on "
            "it (the first event of each batch that reached an execution or start_on rule)",
            registry=self.registry,
            buckets=DECISION_BUCKETS,
        )
        self.job_seconds = Histogram(
            "tideflow_job_duration_seconds",
            "Seconds attempts ran (start to end; creation to end if never RUNNING), by engine "
            "and end status, counted by the server that recorded the end",
            ["engine", "status"],
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Record one finished RPC.

        The labelled series of each (method, code) are looked up once and kept: ``labels``
        checks and hashes its arguments on every call, a few microseconds of every RPC.
        """
        series = self._rpc_series.get((method, code))
        if series is None:
            series = self._rpc_series[(method, code)] = (
                self.rpc_calls.labels(method=method, code=code),
                self.rpc_seconds.labels(method=method),
            )
        calls, latency = series
        calls.inc()
        latency.observe(seconds)

    def track_listeners(self, count: Callable[[], int], *, maximum: int) -> None:
        """Report ``count()`` as the listener gauge whenever it is scraped, and the cap."""
        self.listeners.set_function(count)
        self.listeners_max.set(maximum)

    def track_store(
        self,
        store: Store,
        *,
        scheduler: Scheduler | None = None,
        executions: ExecutionService | None = None,
    ) -> None:
        """Count the store at each scrape; time the scheduler's decisions and jobs' runs.

        Args:
            store: The server's store.
            scheduler: The server's scheduler threads, if it runs them.
            executions: The execution service whose job ends are timed.
        """
        self.registry.register(StoreCollector(store))
        if scheduler is not None:
            scheduler.dispatcher.on_decided = self.decision_seconds.observe
        if executions is not None:
            executions.add_job_end_listener(lambda job: self._job_ended(store, job))

    def _job_ended(self, store: Store, job: JobExecution) -> None:
        from tideflow.store.census import executor_of

        began = job.start_time or job.create_time
        if began is None or job.end_time is None:
            return
        try:
            executor = store.run(lambda c: executor_of(c, job.job_execution_id), write=False)
        except Exception:  # a metric must never fail the status change that triggered it
            log.exception("could not time job execution %s", job.job_execution_id)
            return
        seconds = max((job.end_time - began).total_seconds(), 0.0)
        self.job_seconds.labels(engine=engine_of(executor), status=job.status.value).observe(
            seconds
        )


class StoreCollector(Collector):
    """The families counted from the store at each scrape (see the module)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        """Read the census in one transaction and yield its families."""
        from tideflow.scheduler.actions import CONSUMER
        from tideflow.store.census import take_census

        up = GaugeMetricFamily(
            "tideflow_store_up", "1 if the store answered this scrape's counts, else 0"
        )
        try:
            census = self._store.run(lambda c: take_census(c, consumer=CONSUMER), write=False)
        except Exception:  # a scrape edge: report the store as down, keep the other families
            log.exception("metrics: the store could not be counted")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        attempts = GaugeMetricFamily(
            "tideflow_attempts",
            "Job executions (attempts) that have not ended (INIT, STARTING, RUNNING), by "
            "status, engine and executor; ended ones: tideflow_job_duration_seconds_count",
            labels=["status", "engine", "executor"],
        )
        for (status, executor), count in sorted(census.attempts.items()):
            attempts.add_metric([status, engine_of(executor), executor], count)
        yield attempts
        waiting = GaugeMetricFamily(
            "tideflow_commands_waiting",
            "Job commands in the outbox not done yet, by executor and status (PENDING: not "
            "taken; TAKEN: taken, not yet carried out)",
            labels=["executor", "status"],
        )
        for (executor, status), count in sorted(census.commands.items()):
            waiting.add_metric([executor, status], count)
        yield waiting
        versions = GaugeMetricFamily(
            "tideflow_model_versions", "Model versions by status", labels=["status"]
        )
        for status, count in sorted(census.model_versions.items()):
            versions.add_metric([status], count)
        yield versions
        lag = GaugeMetricFamily(
            "tideflow_dispatcher_lag_events",
            "Events committed that the scheduler's dispatcher has not consumed yet",
        )
        lag.add_metric([], census.dispatcher_lag)
        yield lag
