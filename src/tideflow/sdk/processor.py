"""The user's code inside a node: a processor.

A processor is an object with ``process(ctx, inputs) -> output`` and optional ``open(ctx)`` /
``close(ctx)``, or a plain function ``(ctx, inputs) -> output``. ``inputs`` is a list with one
entry per data edge into the node, in declaration order. The same processor class serves a batch
job (inputs are tables) and a streaming job (inputs are iterators of records or micro-batches),
so preprocessing logic is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tideflow.sdk.context import JobContext


class Processor:
    """Base class for processors; subclass it and override :meth:`process`.

    ``open`` and ``close`` bracket a job's life: ``close`` also runs when a streaming job is
    stopped or restarted, so resources (files, connections) are released gracefully.
    """

    def open(self, ctx: JobContext) -> None:
        """Acquire what :meth:`process` needs; runs once per attempt before the first call."""

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> Any:
        """Turn the node's inputs into its output (a tuple when the node has several)."""
        raise NotImplementedError(f"{type(self).__name__}.process is not implemented")

    def close(self, ctx: JobContext) -> None:
        """Release what :meth:`open` acquired; runs on exit, stop and restart."""


class FunctionProcessor(Processor):
    """Adapts a plain function ``(ctx, inputs) -> output`` to the processor interface."""

    def __init__(self, function: Callable[[JobContext, Sequence[Any]], Any]) -> None:
        self.function = function

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> Any:
        """Call the wrapped function."""
        return self.function(ctx, inputs)

    def __repr__(self) -> str:
        return f"FunctionProcessor({getattr(self.function, '__qualname__', self.function)!r})"


def processor_problem(obj: object) -> str | None:
    """Say why ``obj`` cannot serve as a processor, or return ``None`` when it can."""
    process = getattr(obj, "process", None)
    if process is not None:
        if not callable(process):
            return f"{type(obj).__name__}.process is not callable"
        return None
    if callable(obj):
        return None
    return (
        f"a processor must be an object with process(ctx, inputs) or a function "
        f"(ctx, inputs) -> output, got {type(obj).__name__}"
    )


def as_processor(obj: object) -> Processor:
    """Wrap ``obj`` so the runtime can always call ``open`` / ``process`` / ``close``.

    Raises:
        TypeError: ``obj`` is neither a processor nor a function.
    """
    if isinstance(obj, Processor):
        return obj
    if (problem := processor_problem(obj)) is not None:
        raise TypeError(problem)
    if getattr(obj, "process", None) is not None:
        return _DuckProcessor(obj)
    return FunctionProcessor(obj)  # type: ignore[arg-type]


class _DuckProcessor(Processor):
    """A processor-shaped object that does not subclass :class:`Processor`."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def open(self, ctx: JobContext) -> None:
        if callable(getattr(self.target, "open", None)):
            self.target.open(ctx)

    def process(self, ctx: JobContext, inputs: Sequence[Any]) -> Any:
        return self.target.process(ctx, inputs)

    def close(self, ctx: JobContext) -> None:
        if callable(getattr(self.target, "close", None)):
            self.target.close(ctx)
