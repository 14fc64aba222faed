"""The ready-made rollback job: :class:`Rollback` redeploys the previously deployed version.

    with tide.job("rollback"):
        tide.push_model(model="ctr", processor=Rollback())
    wf.on_event("rollback", event_type="MODEL_DEGRADED")

``c.models.rollback(model)`` deploys the most recently deprecated version again and deprecates
the deployed one, atomically (one ``MODEL_DEPLOYED`` event, on which predictors swap back).
With nothing to roll back to (no deprecated version) the job logs why and finishes: a degraded
first version has no predecessor, and failing the job would not change that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tideflow.errors import FailedPreconditionError, IllegalTransitionError, NotFoundError
from tideflow.monitor.source import model_of
from tideflow.sdk.context import JobContext
from tideflow.sdk.processor import Processor


class Rollback(Processor):
    """Calls ``ctx.client.models.rollback(model)``.

    Args:
        model: The model; the ``model`` config / param or the node's ``model=`` otherwise.
    """

    def __init__(self, model: str | None = None) -> None:
        self.given: dict[str, Any] = {"model": model}

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> int | None:
        """Roll back; return the version deployed again, or ``None`` when there was none."""
        model = model_of(ctx, self.given, "Rollback")
        try:
            current = ctx.client.models.get_version(model, status="DEPLOYED").version
        except NotFoundError:
            current = None
        try:
            restored = ctx.client.models.rollback(model)
        except (NotFoundError, FailedPreconditionError, IllegalTransitionError) as e:
            ctx.logger.warning("cannot roll %s back: %s", model, e)
            return None
        ctx.log_metric(
            "rollback_version", float(restored.version), model=model, version=restored.version
        )
        ctx.logger.info(
            "rolled %s back: version %s deployed again (was %s)", model, restored.version, current
        )
        return int(restored.version)
