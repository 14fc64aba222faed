"""Whether a monitor's finding about a version is news, or the same episode told again.

A rule such as ``wf.on_event("train", event_type="DRIFT_DETECTED", action=RESTART)`` reacts to
the first finding of a shift: the trainer restarts and adapts. Until it has published and
deployed a version, the versions served are older than that finding, so each of them still
shows the shift: without a check, every such version swapped in (the Example Monitor re-arms on
a new baseline) or the other monitor's alarm about the same shift restarts the trainer again,
before it adapted -- measured in the quickstart on a loaded machine, four restarts in twelve
seconds and no version from any of them.

With ``ignore_older_versions`` set, a monitor sends no finding about a version generated before
a finding of the same execution that makes it old news, and logs that it kept quiet instead:

* the Model Monitor's ``MODEL_DEGRADED`` after any finding (``DRIFT_DETECTED`` or
  ``MODEL_DEGRADED``): a quality alarm about a version the retraining already reacts to adds
  nothing;
* the Example Monitor's ``DRIFT_DETECTED`` after an earlier ``DRIFT_DETECTED`` only: the first
  report of a shift in the inputs says *why* the quality fell, so it is sent even when a quality
  alarm came first (at most one more restart), but not again for each older version swapped in.

A version generated after the finding (the retrained one) is watched as before, so a shift it
does not fix is reported again.
"""

from __future__ import annotations

from collections.abc import Sequence

from tideflow.domain.events import DRIFT_DETECTED, MODEL_DEGRADED, Event
from tideflow.errors import NotFoundError
from tideflow.sdk.context import JobContext

FINDINGS = (DRIFT_DETECTED, MODEL_DEGRADED)
PAGE = 1000


def newer_finding(
    ctx: JobContext, model: str, version: int | None, kinds: Sequence[str] = FINDINGS
) -> Event | None:
    """The newest ``kinds`` event about ``model`` in this execution since ``version`` was made.

    ``None`` when there is none, when no version is named, or when the version is unknown (a
    finding about it is then news).
    """
    if version is None:
        return None
    try:
        generated = ctx.client.models.get_version(model, version=version).create_time
    except NotFoundError:
        return None
    if generated is None:
        return None
    execution = str(ctx.execution_id)
    found: Event | None = None
    cursor = None
    while True:
        page = ctx.client.events.list(
            key=model, event_types=list(kinds), since=generated, limit=PAGE, cursor=cursor
        )
        for event in page.items:
            if str(event.context.get("execution_id")) == execution:
                found = event
        cursor = page.next_cursor
        if cursor is None:
            return found
