"""What a test process does when its pytest session ends, before a pytest-xdist worker says so.

Why not leave it to the interpreter's exit (``atexit``): once every pytest-xdist worker has
reported the end of its session, the controller tells them to exit and SIGKILLs any still alive
10 seconds later (``xdist.workermanage.NodeManager.EXIT_TIMEOUT``, not configurable). A worker's
exit runs its ``atexit`` callbacks last-registered first, so the session's shared clusters stop
before coverage's own callback saves the worker's data: a Flink cluster's stop waits up to 10 s
for each of its two daemons, a Ray head's up to 10 s. Under ``scripts/coverage -n 2`` the worker
that had run an engine's tests was killed inside those stops, so its data file was never written
(issue 20: 75.4 % against the serial run's 90.4 %) and a Flink JobManager was left running.

So the session's clusters register their stop with :func:`at_session_end`, which this plugin
(``pytest_plugins`` in ``tests/conftest.py``) runs at the end of the session, after its fixtures
are torn down and before pytest-xdist reports the worker's end; then a worker under coverage saves
its data there too, so no slow exit can lose it. A stop stays registered with ``atexit`` until it
has run, for a process that never reaches the end of its session.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable

import pytest

_stops: list[Callable[[], object]] = []


def at_session_end(stop: Callable[[], object]) -> None:
    """Run ``stop`` when the session ends (or, failing that, when the process exits)."""
    _stops.append(stop)
    atexit.register(stop)


def run_session_end() -> None:
    """Run the registered stops, last registered first; each runs even if an earlier one fails."""
    with contextlib.ExitStack() as stack:
        while _stops:
            stop = _stops.pop(0)
            atexit.unregister(stop)
            stack.callback(stop)


def save_worker_coverage() -> None:
    """In a pytest-xdist worker measured by coverage, write its data now (see the module)."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or "coverage" not in sys.modules:
        return  # not a worker, or coverage never started here (the .pth imports it first)
    current = sys.modules["coverage"].Coverage.current()
    if current is not None:
        # Measurement goes on: what the exit still runs is added by coverage's own atexit save.
        current.save()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish() -> None:
    """After the session's fixtures are torn down, inside pytest-xdist's "finished" report."""
    try:
        run_session_end()
    finally:
        save_worker_coverage()
