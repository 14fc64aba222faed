"""Progress lines: how a job program running outside Tideflow's process tells its executor how it is doing.

An engine's driver (``spark-submit``'s Python driver, for one) writes one line per step to its
standard output, which the executor appends to the attempt's log; the executor reads the log
back and acts on the lines that start with :data:`PREFIX`. The log is the channel, not a pipe,
because the job outlives the server that launched it: a restarted executor re-reads the same
file and learns everything it missed. Stdlib only: drivers run without Tideflow's gRPC stack.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PREFIX = "@@tideflow "
"""Start of a progress line; the rest is one JSON object with an ``event`` member."""
METRIC_EVENT = "metric"
"""The ``event`` of a line carrying one metric value (``name``, ``value``, ``step``, ``tags``);
the executor records it for the job execution (:mod:`tideflow.executors.reporting`)."""


def progress_line(event: str, **fields: Any) -> str:
    """The text of one progress line (with its newline)."""
    return PREFIX + json.dumps({"event": event, **fields}, sort_keys=True) + "\n"


def parse_progress(line: str) -> dict[str, Any] | None:
    """The fields of a progress line, or ``None`` for any other line (or a torn one)."""
    if not line.startswith(PREFIX):
        return None
    try:
        data = json.loads(line[len(PREFIX) :])
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("event"), str) else None


def metric_line(
    name: str, value: float, *, step: int | None = None, tags: Mapping[str, str] | None = None
) -> str:
    """The progress line of one metric value (what drivers and ``ctx.log_metric`` write)."""
    fields: dict[str, Any] = {"name": name, "value": value}
    if step is not None:
        fields["step"] = step
    if tags:
        fields["tags"] = {str(key): str(tag) for key, tag in tags.items()}
    return progress_line(METRIC_EVENT, **fields)
