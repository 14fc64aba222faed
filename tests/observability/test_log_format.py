"""tideflow.logs: text and JSON lines with the ids as fields."""

from __future__ import annotations

import json
import logging

import pytest

from tideflow import logs


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("tideflow.test", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_json_lines_carry_context_and_extra_ids() -> None:
    with logs.bound(request_id="r-1", job="ignored"):
        line = logs.JsonFormatter().format(record("hello", job="train", attempt=2))
    entry = json.loads(line)
    assert entry["message"] == "hello"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "tideflow.test"
    assert entry["time"].endswith("+00:00")
    assert (entry["request_id"], entry["job"], entry["attempt"]) == ("r-1", "train", 2)
    assert "execution_id" not in entry  # only the ids the line knows


def test_text_lines_show_the_ids_before_any_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        made = record("failed", execution_id=3)
        made.exc_info = sys.exc_info()
    text = logs.TextFormatter().format(made)
    first, _, rest = text.partition("\n")
    assert first.endswith("INFO tideflow.test: failed [execution_id=3]")
    assert rest.startswith("Traceback")
    assert logs.TextFormatter().format(record("plain")).endswith("tideflow.test: plain")


def test_an_unknown_format_is_refused_naming_the_choices() -> None:
    assert logs.parse_format("JSON") is logs.LogFormat.JSON
    assert logs.parse_format(None) is logs.LogFormat.TEXT
    with pytest.raises(ValueError, match="unknown log format 'xml'; choose text or json"):
        logs.parse_format("xml")
