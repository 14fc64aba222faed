"""Registering the datasets of ad_ctr's Spark and Flink jobs, so their lineage is recorded.

Spark and Flink processors are data-only -- no Tideflow client -- so they cannot register the
datasets they read and write; their executors record lineage only for registered datasets
(docs/engines.md). Each engine example therefore starts with a small Python job, ``datasets``,
that registers them (where they are for this execution) before the engine job runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tideflow as tide
from tideflow.errors import AlreadyExistsError

Location = tuple[str, str, bool]
"""``(uri, format, stream)`` of a dataset."""


class RegisterDatasets(tide.Processor):
    """Registers each dataset not registered yet at its location.

    A dataset that exists is left as it is: the flagship workflow registers ``ctr_impressions``
    itself, and this example must not move it (a new version) under that workflow.

    Args:
        locations: Dataset name -> a function of ``ctx`` giving its ``(uri, format, stream)``
            (a location may depend on the execution's parameters).
    """

    def __init__(self, locations: Mapping[str, Callable[[Any], Location]]) -> None:
        self.locations = dict(locations)

    def process(self, ctx: Any, inputs: Sequence[Any]) -> list[str]:
        """Register every dataset; return their names."""
        for name, where in self.locations.items():
            uri, format, stream = where(ctx)
            with contextlib.suppress(AlreadyExistsError):
                ctx.client.datasets.register(name, uri=uri, format=format, stream=stream)
        ctx.logger.info("registered datasets %s", ", ".join(self.locations))
        return list(self.locations)
