"""The AI Graph builder: ``tide.workflow(...)`` and ``tide.job(...)``.

The active workflow and job live in context variables, so the ops (``tide.transform`` ...) need
no explicit builder argument, exactly as users write them. Mistakes in the graph are *recorded*,
not raised, and reported together by the compiler; only misuse that leaves nowhere to record
(an op outside any workflow, nested blocks) raises at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from tideflow.domain.contexts import ContextFrom, ContextSource
from tideflow.domain.events import JOB_STATUS_CHANGED, job_event_key
from tideflow.domain.graph import AIGraph, JobSpec, Node
from tideflow.domain.rules import (
    DEFAULT_MAX_QUEUED,
    AllOf,
    Condition,
    EventMatch,
    Life,
    OnBusy,
    Periodic,
    Rule,
    RuleKind,
    Trigger,
)
from tideflow.domain.schedule import Schedule
from tideflow.domain.status import JobAction, JobStatus, ModelStatus, ModelVersionEvent
from tideflow.errors import GraphError, GraphProblem
from tideflow.sdk.location import user_file, user_location

_current_workflow: ContextVar[Workflow | None] = ContextVar("tideflow_workflow", default=None)
_current_job: ContextVar[JobSpec | None] = ContextVar("tideflow_job", default=None)
_collectors: ContextVar[tuple[list[Workflow], ...]] = ContextVar("tideflow_collectors", default=())


@dataclass(frozen=True, eq=False)
class Handle:
    """One output of a node, passed to other ops as their input (a data edge).

    Attributes:
        workflow: The builder the node belongs to; a handle from another workflow is an error.
        node: The node's name.
        index: Which of the node's outputs.
    """

    workflow: Workflow
    node: str
    index: int = 0

    def __repr__(self) -> str:
        return f"Handle({self.node!r}, {self.index})"


class Workflow:
    """Builds one workflow's AI Graph; use it as ``with tide.workflow(name) as wf:``.

    The rule methods (``after``, ``on_event``, ...) attach control edges to jobs by name; they
    can be called inside or after the ``with`` block, before compiling.

    Every job rule method takes ``action=`` (default START) and, for START rules, ``on_busy=``:
    what a firing does while the job has a live attempt -- ``"queue"`` (the default: one more
    attempt per firing once the live one ends, each with its own ``ctx.trigger``, at most
    ``max_queued=`` waiting, 100 by default), ``"latest"`` (queue only the newest firing),
    ``"skip"`` or ``"restart"`` (stop the live attempt, start again). ``on_busy=`` on any other
    rule is a :class:`~tideflow.errors.GraphError`.
    """

    def __init__(
        self,
        name: str,
        *,
        per_context: bool | ContextFrom = False,
        once_per_context: bool = False,
    ) -> None:
        self.name = name
        # The file that declared it: ``submit`` packages that file's directory.
        self.source_file: str | None = user_file()
        self._nodes: list[Node] = []
        self._jobs: list[JobSpec] = []
        self._rules: list[Rule] = []
        self._schedule: Schedule | None = None
        self._problems: list[GraphProblem] = []
        self.per_context = self._context_from(per_context, once_per_context)
        self._kind_counts: Counter[str] = Counter()
        self._token: Any = None

    # -- context management -------------------------------------------------------------

    def __enter__(self) -> Workflow:
        if _current_workflow.get() is not None:
            raise GraphError(
                f"tide.workflow({self.name!r}) is inside another workflow block; "
                "workflows cannot be nested"
            )
        self._token = _current_workflow.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current_workflow.reset(self._token)
        self._token = None
        for collector in _collectors.get():
            collector.append(self)

    def _context_from(self, per_context: object, once: object) -> ContextFrom | None:
        """``per_context=`` / ``once_per_context=`` as the graph holds them (mistakes recorded)."""
        if per_context is True:
            chosen: ContextFrom | None = ContextFrom()
        elif per_context is False or per_context is None:
            chosen = None
        elif isinstance(per_context, ContextFrom):
            chosen = per_context
        else:
            self._problems.append(
                GraphProblem(
                    "per_context must be True, False or tide.context_from(field=... | key=True "
                    f"| value=True), got {per_context!r:.80}",
                    workflow=self.name,
                    location=user_location(),
                )
            )
            return None
        if once is False:
            return chosen
        if not isinstance(once, bool) or chosen is None:
            why = (
                f"must be True or False, got {once!r:.40}"
                if not isinstance(once, bool)
                else "needs per_context (one execution per context) to mean anything"
            )
            self._problems.append(
                GraphProblem(
                    f"once_per_context {why}", workflow=self.name, location=user_location()
                )
            )
            return chosen
        return replace(chosen, once=True)

    # -- what the compiler reads --------------------------------------------------------

    @property
    def graph(self) -> AIGraph:
        """The AI Graph declared so far."""
        return AIGraph(
            workflow=self.name,
            nodes=tuple(self._nodes),
            jobs=tuple(self._jobs),
            rules=tuple(self._rules),
            per_context=self.per_context,
            schedule=self._schedule,
        )

    @property
    def problems(self) -> tuple[GraphProblem, ...]:
        """Mistakes recorded while building (bad arguments, foreign handles)."""
        return tuple(self._problems)

    # -- used by the ops and job blocks -------------------------------------------------

    def next_node_name(self, kind: str) -> str:
        """The default name of the next node of ``kind``: ``<kind>_<n>``, counting from 1."""
        self._kind_counts[kind] += 1
        return f"{kind}_{self._kind_counts[kind]}"

    def add_node(self, node: Node) -> None:
        """Add a node built by an op."""
        self._nodes.append(node)

    def add_job(self, job: JobSpec) -> None:
        """Add a declared job block."""
        self._jobs.append(job)

    def record(self, problem: GraphProblem) -> None:
        """Keep a problem for the compiler to report with all the others."""
        self._problems.append(problem)

    # -- rules ----------------------------------------------------------------------------

    def after(
        self,
        job: str,
        *upstreams: str,
        status: JobStatus | str = JobStatus.FINISHED,
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` once ALL ``upstreams`` reached ``status`` (the classic dependency)."""
        status_value = self._enum(JobStatus, status, "status")
        condition = _all_or_single(
            EventMatch(
                key=job_event_key(self.name, upstream),
                event_type=JOB_STATUS_CHANGED,
                value=str(status_value),
            )
            for upstream in upstreams
        )
        return self._add_rule(
            job, condition, action, RuleKind.AFTER, upstreams, busy=(on_busy, max_queued)
        )

    def with_start(
        self,
        job: str,
        upstream: str,
        *,
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` when ``upstream`` starts running."""
        condition = EventMatch(
            key=job_event_key(self.name, upstream),
            event_type=JOB_STATUS_CHANGED,
            value=str(JobStatus.RUNNING),
        )
        return self._add_rule(
            job, condition, action, RuleKind.WITH_START, (upstream,), busy=(on_busy, max_queued)
        )

    def periodic(
        self,
        job: str,
        *,
        cron: str | None = None,
        interval: timedelta | float | None = None,
        timezone: str = "UTC",
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` on a 5-field ``cron`` schedule in ``timezone``, or every ``interval``."""
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        condition = Periodic(cron=cron, interval_seconds=seconds, timezone=timezone)
        return self._add_rule(job, condition, action, RuleKind.PERIODIC, busy=(on_busy, max_queued))

    def schedule(
        self,
        *,
        cron: str | None = None,
        interval: timedelta | float | None = None,
        timezone: str = "UTC",
        catchup: bool = False,
    ) -> Schedule:
        """Start one execution per tick of a 5-field ``cron`` in ``timezone``, or per ``interval``.

        Each tick starts exactly once, even across server restarts, and its execution gets the
        param ``schedule_time`` (the tick, ISO 8601 UTC). After downtime ``catchup=False``
        starts only the latest missed tick, ``catchup=True`` every missed tick (at most 100).
        A tick while the workflow is paused or at ``max_active_executions`` is skipped.
        """
        seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
        schedule = Schedule(
            cron=cron,
            interval_seconds=seconds,
            timezone=timezone,
            catchup=catchup,
            location=user_location(),
        )
        if self._schedule is not None:
            self._problems.append(
                GraphProblem(
                    "schedule: a workflow has one schedule; it was already set at "
                    f"{self._schedule.location}",
                    workflow=self.name,
                    location=schedule.location,
                )
            )
        self._schedule = schedule
        return schedule

    def on_event(
        self,
        job: str,
        key: str = "*",
        *,
        event_type: str = "*",
        sender: str = "*",
        value: str | None = None,
        life: Life | str = Life.ONCE,
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` when an event matches (``"*"`` matches anything; ``value=None`` any)."""
        match = self._match(key, event_type, sender, value, life)
        return self._add_rule(job, match, action, RuleKind.EVENT, busy=(on_busy, max_queued))

    def on_events(
        self,
        job: str,
        condition: Condition,
        *,
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` when a composed condition (``tide.all_of`` / ``tide.any_of``) holds."""
        return self._add_rule(job, condition, action, RuleKind.EVENT, busy=(on_busy, max_queued))

    def on_model_version(
        self,
        job: str,
        model: str,
        event: ModelVersionEvent | ModelStatus | str = ModelVersionEvent.GENERATED,
        *,
        life: Life | str = Life.ONCE,
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` when a version of ``model`` enters a status (``MODEL_VALIDATED`` ...)."""
        event_type = self._model_event(event)
        match = self._match(model, event_type, "*", None, life)
        return self._add_rule(
            job, match, action, RuleKind.MODEL_VERSION, busy=(on_busy, max_queued)
        )

    def on_dataset(
        self,
        job: str,
        dataset: str,
        *,
        life: Life | str = Life.ONCE,
        action: JobAction | str = JobAction.START,
        on_busy: OnBusy | str | None = None,
        max_queued: int | None = None,
    ) -> Rule:
        """Act on ``job`` when ``dataset`` is registered or updated (``DATASET_UPDATED``)."""
        match = self._match(dataset, "DATASET_UPDATED", "*", None, life)
        return self._add_rule(job, match, action, RuleKind.DATASET, busy=(on_busy, max_queued))

    def start_on(self, condition: Condition) -> Rule:
        """Start a new execution of this workflow when ``condition`` holds."""
        return self._add_rule(None, condition, JobAction.START, RuleKind.START_ON)

    def stop_on(self, condition: Condition) -> Rule:
        """Stop the execution when ``condition`` holds."""
        return self._add_rule(None, condition, JobAction.STOP, RuleKind.STOP_ON)

    # -- helpers --------------------------------------------------------------------------

    def _add_rule(
        self,
        job: str | None,
        condition: Trigger,
        action: JobAction | str,
        kind: RuleKind,
        upstreams: tuple[str, ...] = (),
        *,
        busy: tuple[OnBusy | str | None, int | None] = (None, None),
    ) -> Rule:
        on_busy, max_queued = busy
        checked: JobAction = self._enum(JobAction, action, "action")
        if job is not None and checked == JobAction.START:
            # Written out in the plan, so `workflow show` and the JSON say what happens.
            if on_busy is None:
                on_busy = OnBusy.QUEUE
            if on_busy == OnBusy.QUEUE and max_queued is None:
                max_queued = DEFAULT_MAX_QUEUED
        rule = Rule(
            job=job,
            condition=condition,
            action=checked,
            kind=kind,
            upstreams=tuple(upstreams),
            location=user_location(),
            on_busy=on_busy,  # type: ignore[arg-type]  # an unknown string is the checks' to report
            max_queued=max_queued,
        )
        self._rules.append(rule)
        return rule

    def _match(
        self, key: str, event_type: str, sender: str, value: str | None, life: Life | str
    ) -> EventMatch:
        return EventMatch(
            key=key,
            event_type=event_type,
            sender=sender,
            value=value,
            life=self._enum(Life, life, "life"),
        )

    def _model_event(self, event: ModelVersionEvent | ModelStatus | str) -> str:
        if isinstance(event, ModelStatus):
            return str(ModelVersionEvent.for_status(event))
        for candidate in ModelVersionEvent:
            if event in (candidate.value, candidate.name):
                return candidate.value
        self._problems.append(
            GraphProblem(
                f"unknown model version event {event!r}; use one of {', '.join(ModelVersionEvent)}",
                workflow=self.name,
                location=user_location(),
            )
        )
        return str(event)

    def _enum(self, enum: Any, value: Any, label: str) -> Any:
        """Convert ``value`` to ``enum``, recording a problem (and keeping the raw value) if not."""
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(str(member) for member in enum)
            self._problems.append(
                GraphProblem(
                    f"unknown {label} {value!r}; use one of {allowed}",
                    workflow=self.name,
                    location=user_location(),
                )
            )
            return value

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, nodes={len(self._nodes)}, rules={len(self._rules)})"


def _all_or_single(matches: Iterable[EventMatch]) -> Condition:
    items = tuple(matches)
    return items[0] if len(items) == 1 else AllOf(items)


def workflow(
    name: str, *, per_context: bool | ContextFrom = False, once_per_context: bool = False
) -> Workflow:
    """Start declaring a workflow: ``with tide.workflow("ctr_online") as wf: ...``.

    Args:
        name: Unique within the project.
        per_context: Give each event context its own execution, started on demand by
            ``start_on`` rules, instead of routing shared events to every running execution.
            ``True`` reads an event's context from ``context["context"]``;
            :func:`context_from` reads it from another field, the key or the value.
        once_per_context: A context whose execution has ended never gets another one: a
            later ``start_on`` firing for it is recorded as skipped (needs ``per_context``).
    """
    return Workflow(name, per_context=per_context, once_per_context=once_per_context)


def context_from(
    *, field: str | None = None, key: bool = False, value: bool = False
) -> ContextFrom:
    """Where a ``per_context`` workflow reads an event's contexts: give exactly one.

    ``tide.workflow("hourly", per_context=tide.context_from(field="hour"))``: the event's
    ``context["hour"]`` (a string, an integer or a list of them: several contexts);
    ``key=True``: its key; ``value=True``: its whole value. The context ``"*"`` reaches every
    running execution of the workflow and starts none.

    Raises:
        GraphError: Not exactly one of ``field=``, ``key=True``, ``value=True``.
    """
    chosen = [
        source
        for source, given in (
            (ContextSource.FIELD, field is not None),
            (ContextSource.KEY, key is True),
            (ContextSource.VALUE, value is True),
        )
        if given
    ]
    if len(chosen) != 1 or key not in (True, False) or value not in (True, False):
        raise GraphError(
            [
                GraphProblem(
                    'tide.context_from takes exactly one of field="name", key=True or '
                    f"value=True (got field={field!r:.40}, key={key!r:.20}, value={value!r:.20})",
                    location=user_location(),
                )
            ]
        )
    source = chosen[0]
    return ContextFrom(source=source, field=field if source is ContextSource.FIELD else None)


@contextmanager
def job(
    name: str,
    *,
    engine: str = "python",
    platform: str | None = None,
    streaming: bool = False,
    config: dict[str, Any] | None = None,
    retries: int = 0,
    timeout: timedelta | float | None = None,
    resources: dict[str, Any] | None = None,
) -> Iterator[JobSpec]:
    """Declare a job: nodes created inside the block run together on one engine.

    Args:
        name: Unique within the workflow.
        engine: ``python`` (default), ``flink`` or ``spark``, or a plugin's engine.
        platform: Where a Python job runs: ``local`` processes (default) or ``ray``. A Flink
            or Spark job runs on its engine's cluster, so its platform defaults to the engine
            (``flink`` / ``spark``): the platform names the executor that takes its commands.
        streaming: ``True`` for a job that runs until stopped.
        config: Engine / executor settings, JSON-serialisable.
        retries: How often a failed attempt is retried.
        timeout: How long an attempt may run (seconds or a timedelta).
        resources: What the job asks of its platform.
    """
    wf = current_workflow(f"tide.job({name!r})")
    outer = _current_job.get()
    if outer is not None:
        raise GraphError(
            f"tide.job({name!r}) is inside tide.job({outer.name!r}); jobs cannot be nested "
            "(hand data between jobs with a dataset and a control edge)"
        )
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    spec = JobSpec(
        name=name,
        engine=engine,
        platform=platform if platform is not None else default_platform(engine),
        streaming=streaming,
        config=dict(config or {}),
        retries=retries,
        timeout=seconds,
        resources=dict(resources or {}),
        location=user_location(),
    )
    wf.add_job(spec)
    token = _current_job.set(spec)
    try:
        yield spec
    finally:
        _current_job.reset(token)


def default_platform(engine: str) -> str:
    """The executor a job of ``engine`` goes to when the job names no platform.

    Python jobs run as local processes; a cluster engine's jobs go to the executor of the
    same name, which submits them to that engine's cluster.
    """
    return "local" if engine == "python" else engine


def current_workflow(what: str) -> Workflow:
    """The workflow being declared.

    Raises:
        GraphError: ``what`` was called outside ``with tide.workflow(...)``.
    """
    wf = _current_workflow.get()
    if wf is None:
        raise GraphError(f"{what} must be called inside `with tide.workflow(...)`")
    return wf


def current_job() -> JobSpec | None:
    """The job block being declared, if any."""
    return _current_job.get()


@contextmanager
def collect_workflows() -> Iterator[list[Workflow]]:
    """Collect every workflow whose ``with`` block closes inside this block (for file loaders)."""
    found: list[Workflow] = []
    token = _collectors.set((*_collectors.get(), found))
    try:
        yield found
    finally:
        _collectors.reset(token)
