"""Processors for executor tests, copied into each test's code package as ``tfsteps.py``.

They are pickled by reference (the module is importable from the package), so the job
imports them from its working directory, as a user's workflow would.
"""

import json
import os
import signal
import time
from pathlib import Path


def _append(path, line):
    with open(path, "a") as out:
        out.write(line + "\n")


def _wait_for(path, limit=60.0):
    deadline = time.monotonic() + limit
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


class Emit:
    def __init__(self, value):
        self.value = value

    def process(self, ctx, inputs):
        return self.value


class Add:
    def __init__(self, n):
        self.n = n

    def process(self, ctx, inputs):
        return inputs[0] + self.n


class Record:
    """Writes what it saw, and its open/close calls, to ``path``."""

    def __init__(self, path):
        self.path = path

    def open(self, ctx):
        _append(self.path, f"open {ctx.node}")

    def process(self, ctx, inputs):
        seen = {
            "inputs": list(inputs),
            "node": ctx.node,
            "job": ctx.job,
            "workflow": ctx.workflow,
            "execution_id": ctx.execution_id,
            "attempt": ctx.attempt,
            "params": dict(ctx.params),
            "config": dict(ctx.config),
            "cwd": os.getcwd(),
        }
        _append(self.path, "process " + json.dumps(seen, sort_keys=True))
        ctx.logger.info("recorded %s", inputs)
        return inputs[0] if inputs else None

    def close(self, ctx):
        _append(self.path, f"close {ctx.node}")


class Fail:
    def process(self, ctx, inputs):
        raise ValueError(f"bad input {inputs!r}")


class Stream:
    """A streaming processor: runs until stopped; ``close`` leaves a file behind."""

    def __init__(self, started, closed):
        self.started = started
        self.closed = closed

    def process(self, ctx, inputs):
        Path(self.started).touch()
        while True:
            time.sleep(0.05)

    def close(self, ctx):
        Path(self.closed).write_text(f"closed, stopping={ctx.stopping}")


class Stubborn:
    """Ignores SIGTERM: only SIGKILL ends it."""

    def __init__(self, started):
        self.started = started

    def open(self, ctx):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def process(self, ctx, inputs):
        Path(self.started).touch()
        while True:
            time.sleep(0.05)


class Silent:
    """Stops the job's heartbeat thread, then hangs."""

    def process(self, ctx, inputs):
        from tideflow.engines.python.runtime import current_heartbeat

        current_heartbeat().stop()
        time.sleep(120)


class Gate:
    """Announces it started, then waits for ``release`` to exist."""

    def __init__(self, started, release):
        self.started = started
        self.release = release

    def process(self, ctx, inputs):
        Path(self.started).touch()
        _wait_for(self.release)
        return "released"


class Count:
    """A lazy source: yields 0..n-1."""

    def __init__(self, n):
        self.n = n

    def process(self, ctx, inputs):
        return iter(range(self.n))


class Write:
    """A lazy sink: writes each record of its input as it flows."""

    def __init__(self, path):
        self.path = path

    def process(self, ctx, inputs):
        def flow():
            for record in inputs[0]:
                _append(self.path, str(record))
                yield record

        return flow()


class Report:
    """Sends an event and logs a metric through ctx."""

    def process(self, ctx, inputs):
        ctx.send_event("report", "done", event_type="REPORTED", context={"extra": 1})
        ctx.log_metric("rows", 42.0)
        return None


class Import:
    """Imports a module (from a requirements environment) and records where it came from."""

    def __init__(self, module, path):
        self.module = module
        self.path = path

    def process(self, ctx, inputs):
        import importlib

        module = importlib.import_module(self.module)
        Path(self.path).write_text(f"{module.__name__} {getattr(module, 'VALUE', '')}")


class Environment:
    """Writes what the job was given (its environment, ``ctx.data_dir``) to ``path``."""

    def __init__(self, path):
        self.path = path

    def process(self, ctx, inputs):
        data_dir = ctx.data_dir
        (data_dir / "handed-over.txt").write_text("from the job")
        seen = {"environ": dict(os.environ), "data_dir": str(data_dir), "cwd": os.getcwd()}
        Path(self.path).write_text(json.dumps(seen))
        return None


class ExitWhenReleased:
    """Announces it started, waits for ``release``, then exits at once with ``code``."""

    def __init__(self, started, release, code):
        self.started = started
        self.release = release
        self.code = code

    def process(self, ctx, inputs):
        Path(self.started).touch()
        _wait_for(self.release)
        os._exit(self.code)
