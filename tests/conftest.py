"""Shared fixtures: processors usable in any workflow under test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import tideflow as tide


class Echo(tide.Processor):
    """Returns its inputs unchanged: enough to build and compile graphs."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        return list(inputs)


@pytest.fixture
def echo() -> Echo:
    return Echo()
