"""What a Spark processor is given: identity, parameters, config, the session, the data dir.

Spark processors are data-only (DataFrames in, DataFrames out), so this context has no
``client``: nothing of Tideflow's gRPC stack has to be importable where Spark runs. Status,
logs, the Spark application id, metrics and lineage are reported by the ``spark`` executor from
outside; :meth:`SparkJobContext.log_metric` writes a progress line the executor records.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideflow.domain.progress import metric_line
from tideflow.errors import FailedPreconditionError


@dataclass(frozen=True)
class SparkJobContext:
    """The ``ctx`` of a Spark processor's ``open`` / ``process`` / ``close``.

    Attributes:
        spark: The job's ``SparkSession`` (master and conf come from ``spark-submit``).
        workflow: The workflow's name.
        execution_id: The workflow execution.
        job: The job's name.
        attempt: The attempt number, from 1.
        node: The node whose processor is called.
        streaming: Whether the job is a streaming job (inputs are streaming DataFrames).
        params: The execution's parameters.
        config: The node's config.
        model: The node's model, if any.
        dataset: The node's dataset, if any.
        stopping: Set once the attempt was asked to stop.
        data_location: The project's data directory as ``attempt.json`` names it (read it as
            :attr:`data_dir`); ``None`` when the executor gave none.
    """

    spark: Any
    workflow: str
    execution_id: int
    job: str
    attempt: int
    node: str
    streaming: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    dataset: str | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    data_location: str | None = None

    @property
    def data_dir(self) -> Path:
        """The project's data directory: where its jobs hand files to each other.

        The same directory as a Python job's ``ctx.data_dir`` (``$TIDEFLOW_DATA_DIR``), on
        the machine the executor runs on; made if missing.

        Raises:
            FailedPreconditionError: The executor gave this attempt no data directory.
        """
        if not self.data_location:
            raise FailedPreconditionError("this Spark job has no data directory")
        path = Path(self.data_location)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the node; its lines go to the job's log."""
        return logging.getLogger(f"tideflow.spark.{self.job}.{self.node}")

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Report a metric value of the job execution (tagged with the node and ``engine=spark``).

        Call it in ``open`` / ``process`` / ``close``, which run in the driver: its line goes to
        the job's log, where the executor picks it up. Code running on Spark's executors (a UDF,
        ``foreachBatch`` on a worker) has no such channel.
        """
        sys.stdout.write(metric_line(name, value, step=step, tags={"node": self.node}))
        sys.stdout.flush()

    @property
    def client(self) -> Any:
        """Not available: Spark processors are data-only.

        Raises:
            AttributeError: Always, naming the way to hand results over instead.
        """
        raise AttributeError(
            "Spark processors are data-only and have no Tideflow client: write results with "
            "write_dataset and let a Python job downstream register models or send events"
        )
