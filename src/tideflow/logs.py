"""Log lines as text or JSON, with Tideflow's ids as fields (``--log-format``).

The server (``tideflow server start --log-format json``) and its jobs (they inherit the format
through ``$TIDEFLOW_LOG_FORMAT``) write one of two formats:

* ``text`` (the default): ``2026-01-31 08:00:00,123 INFO tideflow.x: message [execution_id=3
  job=train attempt=1]`` -- the ids a line knows, after the message;
* ``json``: one object per line with ``time`` (ISO 8601, UTC), ``level``, ``logger``,
  ``message``, every id the line knows as its own field and ``traceback`` for exceptions --
  what log shippers (Loki, Elasticsearch, CloudWatch) index without a parsing rule.

The ids are :data:`ID_FIELDS`. A line gets them three ways, later ones winning: the process's
own (:func:`set_process_ids`: a job's project, workflow, execution, job and attempt), the
sources added with :func:`add_id_source` (the server's: the current RPC's project and request
id), the ids bound in the current context (:func:`bound`), and the call's ``extra={...}``. Standard library only: every layer (the server, the job runtimes) uses it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

LOG_FORMAT_VARIABLE = "TIDEFLOW_LOG_FORMAT"
"""The log format of a job process (``text`` or ``json``), set by its server."""

ID_FIELDS = (
    "project",
    "workflow",
    "execution_id",
    "job",
    "attempt",
    "job_execution_id",
    "command_id",
    "request_id",
    "rule",
    "event_offset",
)
"""The ids a log line may carry as fields, in the order text lines show them."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_bound: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "tideflow_log_ids", default=MappingProxyType({})
)
_process_ids: dict[str, Any] = {}
_sources: list[Callable[[], Mapping[str, Any]]] = []
_current = ["text"]


class LogFormat(StrEnum):
    """How log lines are written."""

    TEXT = "text"
    JSON = "json"


def parse_format(value: str | None) -> LogFormat:
    """``value`` as a :class:`LogFormat` (``None`` or empty: text).

    Raises:
        ValueError: Neither ``text`` nor ``json`` (the message lists both).
    """
    if not value:
        return LogFormat.TEXT
    try:
        return LogFormat(value.strip().lower())
    except ValueError:
        raise ValueError(f"unknown log format {value!r}; choose text or json") from None


def set_process_ids(**ids: Any) -> None:
    """Ids every line of this process carries (a job's project, execution, job, attempt)."""
    _process_ids.update({k: v for k, v in ids.items() if v is not None})


def add_id_source(source: Callable[[], Mapping[str, Any]]) -> None:
    """Ask ``source()`` for ids at every line (the server: the current RPC's request id).

    For ids another layer already keeps in a context variable: the line reads them there,
    and that layer needs no logging code of its own.
    """
    _sources.append(source)


@contextlib.contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Ids the lines logged inside the block carry (this thread or task only)."""
    token = _bound.set({**_bound.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def record_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The ids ``record`` carries, from the process, the context and its ``extra``."""
    ids = dict(_process_ids)
    for source in _sources:
        ids.update({k: v for k, v in source().items() if v is not None})
    ids.update(_bound.get())
    for name in ID_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            ids[name] = value
    return {name: ids[name] for name in ID_FIELDS if name in ids}


class TextFormatter(logging.Formatter):
    """The classic line, then the ids it knows in brackets."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The line, with ``[k=v ...]`` after the message when it knows ids."""
        ids = record_ids(record)
        if not ids:
            return super().format(record)
        # The ids go after the message's first line, before any traceback.
        text = super().format(record)
        head, newline, rest = text.partition("\n")
        fields = " ".join(f"{k}={v}" for k, v in ids.items())
        return f"{head} [{fields}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_ids(record),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(log_format: LogFormat | str) -> logging.Formatter:
    """The formatter of ``log_format``."""
    return JsonFormatter() if parse_format(str(log_format)) is LogFormat.JSON else TextFormatter()


def configure(
    log_format: LogFormat | str,
    handlers: Sequence[logging.Handler] | None = None,
    *,
    level: int = logging.INFO,
) -> None:
    """Make the root logger write ``log_format`` to ``handlers`` (default: stderr).

    Remembers the format: :func:`current_format` hands it on to job processes.
    """
    chosen = parse_format(str(log_format))
    handlers = list(handlers) if handlers is not None else [logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(formatter(chosen))
    logging.basicConfig(level=level, handlers=handlers, force=True)
    _current[0] = chosen.value


def current_format() -> str:
    """The format :func:`configure` set in this process (``text`` if it was never called)."""
    return _current[0]
