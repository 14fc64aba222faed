"""Spark processors for the tests; copied into code packages as ``tfsparksteps.py``.

Jobs import them from the package (as users' jobs do), so nothing here may import the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tideflow as tide

LOG_TEXT = "tideflow spark step says hello"
ERROR_TEXT = "spark step failed on purpose"


class Numbers(tide.Processor):
    """``n`` rows ``id``, ``k = id % 3`` (``n`` from the node config, else ``ctx.params``)."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        n = int(ctx.config.get("n", ctx.params.get("n", 30)))
        ctx.logger.info(LOG_TEXT)
        return ctx.spark.range(n).selectExpr("id", "id % 3 AS k")


class CountByKey(tide.Processor):
    """Rows per ``k``, sorted."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        return inputs[0].groupBy("k").count().orderBy("k")


class Fail(tide.Processor):
    """Fails in ``process`` with :data:`ERROR_TEXT`."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        raise ValueError(ERROR_TEXT)


class Rate(tide.Processor):
    """A streaming source of ``rows_per_second`` rows (Spark's ``rate`` source)."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        rate = str(ctx.config.get("rows_per_second", 5))
        return ctx.spark.readStream.format("rate").option("rowsPerSecond", rate).load()


class Even(tide.Processor):
    """Keeps the even ``value`` rows of a (streaming) DataFrame."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        ctx.logger.info(LOG_TEXT)
        return inputs[0].where("value % 2 = 0")


class NoopSink(tide.Processor):
    """Starts a streaming query writing to Spark's ``noop`` sink (checkpoint in a temp dir)."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        import tempfile

        checkpoint = tempfile.mkdtemp(prefix="tideflow-spark-checkpoint-")
        query = inputs[0].writeStream.format("noop").option("checkpointLocation", checkpoint)
        return query.trigger(processingTime="1 second").start()
