"""Job generators: one per engine, turning a job's sub-graph into what that engine runs.

Generators are plugins found through the ``tideflow.engines`` entry-point group and imported
only when a workflow uses their engine, so ``import tideflow`` never pays for PyFlink or PySpark.
A generator reports problems by raising :class:`~tideflow.errors.GraphError`; the compiler merges
them with every other problem before raising once.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from tideflow.compiler.plan import PlanNode
from tideflow.domain.graph import JobSpec, Node
from tideflow.errors import InvalidArgumentError

ENGINE_GROUP = "tideflow.engines"


@dataclass(frozen=True)
class GeneratedJob:
    """What a generator produced for one job.

    Attributes:
        nodes: The job's nodes as compiled, in the order the engine runs them.
        engine_payload: JSON-serialisable instructions for the engine's runtime (lists, not
            tuples, so they survive a JSON round trip unchanged).
        payloads: Serialised user code by sha256.
    """

    nodes: tuple[PlanNode, ...]
    engine_payload: Mapping[str, Any] = field(default_factory=dict)
    payloads: Mapping[str, bytes] = field(default_factory=dict)


class JobGenerator(ABC):
    """Compiles the jobs of one engine.

    Attributes:
        runtime: ``"module:function"`` of the engine's in-job runtime, which executors call in
            the job's process with the attempt's working directory (see
            :mod:`tideflow.domain.attempt`); ``None`` for engines whose jobs run elsewhere.
            Executors read this string and never import the runtime themselves.
    """

    runtime: ClassVar[str | None] = None

    @abstractmethod
    def generate(self, workflow: str, job: JobSpec, nodes: Sequence[Node]) -> GeneratedJob:
        """Compile ``nodes`` (declaration order) of ``job``.

        Raises:
            GraphError: Every problem found in this job.
        """


def digest(blob: bytes) -> str:
    """The sha256 hex digest that names a payload."""
    return hashlib.sha256(blob).hexdigest()


class GeneratorRegistry:
    """Engine name -> generator, from entry points plus programmatic registrations."""

    def __init__(self, group: str = ENGINE_GROUP) -> None:
        self._group = group
        self._registered: dict[str, JobGenerator] = {}
        self._loaded: dict[str, JobGenerator] = {}

    def register(self, engine: str, generator: JobGenerator) -> None:
        """Add (or replace) the generator of ``engine`` without an entry point."""
        self._registered[engine] = generator

    def names(self) -> list[str]:
        """Every known engine, sorted."""
        found = {ep.name for ep in entry_points(group=self._group)}
        return sorted(found | set(self._registered))

    def get(self, engine: str) -> JobGenerator:
        """The generator of ``engine``, importing its plugin on first use.

        Raises:
            InvalidArgumentError: The engine is unknown or its plugin cannot be loaded.
        """
        if engine in self._registered:
            return self._registered[engine]
        if engine in self._loaded:
            return self._loaded[engine]
        matches = [ep for ep in entry_points(group=self._group) if ep.name == engine]
        if not matches:
            known = ", ".join(self.names()) or "none"
            raise InvalidArgumentError(
                f"unknown engine {engine!r} (known engines: {known})", field="engine"
            )
        try:
            target = matches[0].load()
            generator = target() if isinstance(target, type) else target
        except Exception as exc:  # a plugin's import failure must name the plugin, not crash
            raise InvalidArgumentError(
                f"engine {engine!r} plugin {matches[0].value!r} failed to load: {exc}",
                field="engine",
            ) from exc
        if not isinstance(generator, JobGenerator):
            raise InvalidArgumentError(
                f"engine {engine!r} plugin {matches[0].value!r} is not a JobGenerator",
                field="engine",
            )
        self._loaded[engine] = generator
        return generator


default_registry = GeneratorRegistry()
