"""Processors of the monitor workflows under test (copied into each code package as tfmonitor.py).

``Trainer`` is a streaming training job in miniature: it reads the training samples stream,
logs a model version whose lineage names the offsets it read, deploys it, and then runs until
it is stopped (or restarted) -- what a ``DRIFT_DETECTED`` rule restarts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import tideflow as tide
from tideflow.io.lineage import register_dataset
from tideflow.io.local_stream import LocalStreamReader


class SamplesPath(tide.Processor):
    def process(self, ctx: Any, inputs: Sequence[Any]) -> str:
        return str(ctx.params["samples"])


class Trainer(tide.Processor):
    def process(self, ctx: Any, inputs: Sequence[Any]) -> int:
        reader = LocalStreamReader(inputs[0])
        register_dataset(ctx.client, "mon_samples", reader)
        rows = list(reader.records(max_wait=0, idle_timeout=0))
        span = reader.read_range()
        assert span is not None
        version = ctx.log_model(
            {"rows": len(rows)}, model=ctx.model, flavour="pickle", inputs=[span.to_lineage_ref()]
        )
        ctx.client.models.set_status(ctx.model, version.version, "VALIDATED")
        ctx.client.models.deploy(ctx.model, version.version)
        ctx.logger.info("trained and deployed version %s on %d rows", version.version, len(rows))
        threading.Event().wait()  # a streaming job: runs until STOP / RESTART (SIGTERM)
        return len(rows)
