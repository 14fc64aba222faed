"""The hot-swapping model reference behind the predictor and the streaming predict processor.

:class:`ModelHolder` serves one model's DEPLOYED version and follows the Model Center:

- **Start.** It reads the event log's head offset, loads the version DEPLOYED at that point
  (reading it before and after the head until both agree, so the version is the one deployed
  *at* that offset), then listens for the model's ``MODEL_DEPLOYED``, ``MODEL_DEPRECATED`` and
  ``MODEL_DELETED`` events after the head: nothing committed in between is missed.
- **Swap.** On ``MODEL_DEPLOYED`` its listener thread loads the new version (fetch the blob,
  verify, deserialise) while requests keep being served by the current one, then replaces one
  reference. A reader takes that reference once per batch, so a request in flight finishes on
  the version it started with; there is no lock on the serving path.
- **What is served is always deployed, in log time.** The reference is a :class:`Served`: the
  version *and* the event offset at which that version was the deployed one. Every prediction
  carries both, so anyone can check against the event log that the version was DEPLOYED at the
  offset it names. A version that was never deployed is never loaded.
- **Withdrawal.** A deploy appends ``MODEL_DEPRECATED`` of the old version and
  ``MODEL_DEPLOYED`` of the new one in one transaction (consecutive offsets). When the served
  version is deprecated or deleted and no deploy follows within :data:`WITHDRAW_GRACE`, the
  holder stops serving (the predictor answers 503) until a version is deployed again.
- **Failures.** A version that cannot be loaded (missing blob, a class that does not import)
  is logged and counted; the holder keeps serving what it had.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tideflow.client.local import Client
from tideflow.client.model_artifact import ModelLoader
from tideflow.domain.events import Event
from tideflow.domain.model import ModelVersion
from tideflow.domain.status import ModelStatus, ModelVersionEvent
from tideflow.errors import NotFoundError, UnavailableError

log = logging.getLogger(__name__)

WITHDRAW_GRACE = 0.5
"""Seconds to wait for the deploy that may follow a deprecation before withdrawing."""
_EVENTS = (ModelVersionEvent.DEPLOYED, ModelVersionEvent.DEPRECATED, ModelVersionEvent.DELETED)


@dataclass(frozen=True)
class Served:
    """What the holder serves: a loaded version and the log offset at which it was deployed.

    Attributes:
        version: The model version.
        model: The deserialised object.
        offset: An event offset at which ``version`` was the DEPLOYED one (the offset of its
            ``MODEL_DEPLOYED`` event, or the log head when the holder started).
        since: ``time.monotonic()`` when it started being served.
    """

    version: ModelVersion
    model: Any
    offset: int
    since: float


class ModelHolder:
    """Serves the DEPLOYED version of ``model`` and swaps it on deploys (module docstring).

    Args:
        client: A client of the model's project.
        model: The registered model's name.
        on_swap: Called with the new :class:`Served` after every swap (metrics).
        on_error: Called with the exception when a deployed version fails to load.
    """

    def __init__(
        self,
        client: Client,
        model: str,
        *,
        on_swap: Callable[[Served | None], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self._loader = ModelLoader(client, capacity=2)
        self._on_swap = on_swap
        self._on_error = on_error
        self._current: Served | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._listener: Any = None
        self._thread: threading.Thread | None = None
        self.swaps = 0
        """How many times the served version changed after start."""

    @property
    def current(self) -> Served | None:
        """What is served now (one atomic read); ``None`` when no version is deployed."""
        return self._current

    def require(self) -> Served:
        """What is served now.

        Raises:
            UnavailableError: No version of the model is deployed (or it failed to load).
        """
        served = self._current
        if served is None:
            raise UnavailableError(f"no version of model {self.model!r} is deployed")
        return served

    def start(self) -> ModelHolder:
        """Load the deployed version (if any) and start following deploys."""
        head = self._initial()
        self._listener = self.client.events.listen(
            keys=[self.model], event_types=[str(e) for e in _EVENTS], after_offset=head
        )
        self._thread = threading.Thread(
            target=self._follow, name=f"model-holder-{self.model}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (what is served stays loaded)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def wait_for(self, predicate: Callable[[Served | None], bool], timeout: float) -> bool:
        """Block until ``predicate(current)`` holds (checked on every change) or time passes."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._current), timeout)

    def __enter__(self) -> ModelHolder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------

    def _deployed(self) -> ModelVersion | None:
        try:
            return self.client.models.get_version(self.model, status=ModelStatus.DEPLOYED)
        except NotFoundError:
            return None

    def _initial(self) -> int:
        """Serve the version deployed at the log head; return that head offset."""
        before = self._deployed()
        while True:
            head = self.client.events.latest_offset()
            after = self._deployed()
            same = (before is None and after is None) or (
                before is not None and after is not None and before.version == after.version
            )
            if same:
                break
            before = after  # a deploy raced the head read: read again
        if after is not None:
            try:
                loaded = self._loader.load_version(after)
            except Exception as error:  # a bad blob must not stop the predictor from starting
                self._failed(after.version, error)
            else:
                self._set(Served(after, loaded.model, head, time.monotonic()), swap=False)
        return head

    def _follow(self) -> None:
        listener = self._listener
        while not self._stop.is_set() and not listener.closed:
            try:
                events = listener.poll(1.0)
                if events:
                    self._apply(events, listener)
            except Exception:  # the edge of this thread: log, keep serving, keep following
                if self._stop.is_set():
                    return
                log.exception("model holder of %r failed to follow deploys", self.model)
                self._stop.wait(1.0)

    def _apply(self, events: list[Event], listener: Any) -> None:
        target = self._target(events)
        if target == "withdraw":
            more = listener.poll(WITHDRAW_GRACE)  # the deploy of the same transaction, if any
            if more:
                self._apply(events + more, listener)
                return
            log.warning("model %r: the served version was withdrawn; serving nothing", self.model)
            self._set(None, swap=True)
            return
        if isinstance(target, tuple):
            number, offset = target
            current = self._current
            if current is not None and current.version.version == number:
                # Deployed again (a rollback to what is served): only the offset moves.
                self._set(Served(current.version, current.model, offset, current.since), False)
                return
            try:
                loaded = self._loader.load(self.model, version=number)
            except Exception as error:
                self._failed(number, error)
                return
            self._set(Served(loaded.version, loaded.model, offset, time.monotonic()), swap=True)

    def _target(self, events: list[Event]) -> tuple[int, int] | str | None:
        """``(version, offset)`` to deploy, ``"withdraw"``, or ``None`` (nothing to do)."""
        current = self._current
        serving = None if current is None else current.version.version
        target: tuple[int, int] | str | None = None
        for event in events:
            try:
                number = int(json.loads(event.value)["version"])
            except (ValueError, KeyError, TypeError):
                log.warning("model %r: ignoring malformed event %s", self.model, event.offset)
                continue
            if event.event_type == ModelVersionEvent.DEPLOYED:
                target = (number, event.offset)
            else:
                pending = target[0] if isinstance(target, tuple) else serving
                if number == pending:
                    target = "withdraw"
        return target

    def _failed(self, version: int, error: BaseException) -> None:
        log.error(
            "model %r: version %s is deployed but failed to load; still serving %s: %s",
            self.model,
            version,
            None if self._current is None else self._current.version.version,
            error,
        )
        if self._on_error is not None:
            self._on_error(error)

    def _set(self, served: Served | None, swap: bool) -> None:
        with self._changed:
            self._current = served  # the one reference readers take
            if swap:
                self.swaps += 1
            self._changed.notify_all()
        if swap and self._on_swap is not None:
            self._on_swap(served)
        if swap:
            log.info(
                "model %r: now serving version %s",
                self.model,
                None if served is None else served.version.version,
            )
