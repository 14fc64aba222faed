"""The server's Prometheus metrics: RPC counts and latency, events, listeners."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Record one finished RPC."""
        self.rpc_calls.labels(method=method, code=code).inc()
        self.rpc_seconds.labels(method=method).observe(seconds)

    def track_listeners(self, count: Callable[[], int], *, maximum: int) -> None:
        """Report ``count()`` as the listener gauge whenever it is scraped, and the cap."""
        self.listeners.set_function(count)
        self.listeners_max.set(maximum)
