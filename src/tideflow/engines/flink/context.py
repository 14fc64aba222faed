"""What a Flink processor is given: the TableEnvironment, the job's identity and a statement set.

Flink processors are data-only (DESIGN.md): tables in, tables out. They never talk to the
Tideflow server -- the executor reports status for them -- so this context has no client, no
``log_model`` and no events; it has what building a PyFlink program needs. Imports nothing from
PyFlink itself (the driver hands in the objects), so the core environment can type-check it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideflow.domain.progress import metric_line
from tideflow.errors import FailedPreconditionError, InvalidArgumentError

_QUERY = re.compile(r"^\s*(\(|select\b|with\b|values\b|table\b)", re.IGNORECASE)
_INSERT = re.compile(r"^\s*(insert|execute\s+insert)\b", re.IGNORECASE)


@dataclass
class FlinkJobState:
    """Shared by every node's context in one job: the environment and the pending inserts."""

    t_env: Any
    statements: Any
    streaming: bool
    project: str
    workflow: str
    job: str
    execution_id: int
    attempt: int
    params: Mapping[str, Any] = field(default_factory=dict)
    inserts: int = 0
    data_dir: str | None = None


class FlinkContext:
    """The ``ctx`` of a processor in a ``flink`` job.

    Attributes:
        t_env: The job's PyFlink ``TableEnvironment`` (streaming or batch mode, as declared).
        streaming: Whether the job is a streaming job.
        params: The execution's parameters.
        config: The node's ``config=``.
        logger: A logger named after the node (its lines go to the job's log).
    """

    def __init__(self, state: FlinkJobState, node: str, config: Mapping[str, Any]) -> None:
        self._state = state
        self.node = node
        self.config = dict(config)
        self.logger = logging.getLogger(f"tideflow.flink.{node}")

    @property
    def t_env(self) -> Any:
        """The job's ``TableEnvironment``."""
        return self._state.t_env

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Report a metric value of the job execution (tagged with the node and ``engine=flink``).

        Only while the program is built (the processor's ``process``, which runs in Flink's
        client): its line goes to the job's log, where the executor picks it up. Code that runs
        inside the Flink job (a UDF on a TaskManager) has no way back to the executor.
        """
        sys.stdout.write(metric_line(name, value, step=step, tags={"node": self.node}))
        sys.stdout.flush()

    @property
    def streaming(self) -> bool:
        """Whether the job runs until stopped."""
        return self._state.streaming

    @property
    def params(self) -> Mapping[str, Any]:
        """The execution's parameters (``tide.start(..., params=...)``)."""
        return self._state.params

    @property
    def data_dir(self) -> Path:
        """The project's data directory: where its jobs hand files to each other.

        The same directory as a Python job's ``ctx.data_dir`` (``$TIDEFLOW_DATA_DIR``), on
        the machine the executor runs on (a sink writing there from a remote cluster's
        TaskManagers needs that path shared); made if missing.

        Raises:
            FailedPreconditionError: The executor gave this attempt no data directory.
        """
        if not self._state.data_dir:
            raise FailedPreconditionError("this Flink job has no data directory")
        path = Path(self._state.data_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def project(self) -> str:
        """The project."""
        return self._state.project

    @property
    def workflow(self) -> str:
        """The workflow's name."""
        return self._state.workflow

    @property
    def job(self) -> str:
        """The job's name."""
        return self._state.job

    @property
    def execution_id(self) -> int:
        """The workflow execution."""
        return self._state.execution_id

    @property
    def attempt(self) -> int:
        """The attempt number, from 1."""
        return self._state.attempt

    def insert(self, table: Any, target: str) -> None:
        """Write ``table`` into the registered table ``target`` when the job is submitted.

        Every insert of a job runs in one Flink job (one statement set).
        """
        self._state.statements.add_insert(target, table)
        self._state.inserts += 1

    def sql(self, statements: str | Sequence[str]) -> Any:
        """Run SQL the way a processor returning it does; the last query's Table, or None.

        Statements are separated by ``;`` (one per string is fine too): queries (``SELECT``,
        ``WITH``, ``VALUES``) become Tables, ``INSERT`` statements join the job's statement
        set, everything else (``CREATE TABLE``, ``CREATE FUNCTION``, ``SET``...) runs at once.

        Raises:
            InvalidArgumentError: An empty statement list.
        """
        texts = [statements] if isinstance(statements, str) else list(statements)
        parts = [p.strip() for text in texts for p in split_statements(text) if p.strip()]
        if not parts:
            raise InvalidArgumentError(f"node {self.node!r} gave no SQL statement", field="sql")
        result: Any = None
        for statement in parts:
            if _QUERY.match(statement):
                result = self.t_env.sql_query(statement)
            elif _INSERT.match(statement):
                self._state.statements.add_insert_sql(statement)
                self._state.inserts += 1
            else:
                self.t_env.execute_sql(statement)
        return result


def split_statements(text: str) -> list[str]:
    """``text`` split at semicolons outside quotes (``'...'`` and backticks)."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in ("'", "`"):
            quote = char
        elif char == ";":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts
