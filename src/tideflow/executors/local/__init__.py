"""The local executor: job attempts as processes on this host (:mod:`.platform`).

All of the attempt's lifecycle is the supervisor's (:mod:`tideflow.executors.supervisor`);
this package says only how a process is started warm (:mod:`.forkserver`), given its
requirements (:mod:`.environment`), watched and signalled.

Its names are imported on first use: ``python -m tideflow.executors.local.forkserver`` imports
this package first, and the fork server must stay light (and must not import itself twice).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tideflow.executors.local.executor import LocalExecutor
    from tideflow.executors.local.platform import LocalPlatform, LocalSettings

__all__ = ["LocalExecutor", "LocalPlatform", "LocalSettings"]

_HOMES = {
    "LocalExecutor": "tideflow.executors.local.executor",
    "LocalPlatform": "tideflow.executors.local.platform",
    "LocalSettings": "tideflow.executors.local.platform",
}


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
