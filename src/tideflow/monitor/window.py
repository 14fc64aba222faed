"""Sliding windows over a stream of samples: ``size`` samples, evaluated every ``step`` samples.

The first window is due when ``size`` samples have arrived; after that one is due every
``step`` new samples (``step == size``: tumbling windows; ``step < size``: overlapping ones).
Memory is bounded by ``size``. Windows are numbered from 0, strictly increasing, which is the
``step`` of the metrics a monitor logs for them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from tideflow.errors import InvalidArgumentError

T = TypeVar("T")


class SlidingWindow(Generic[T]):
    """The last ``size`` samples, with a due window every ``step`` samples.

    Args:
        size: Samples per window.
        step: New samples between two windows; ``size`` when ``None``.
    """

    def __init__(self, size: int, step: int | None = None) -> None:
        step = size if step is None else step
        if size < 1:
            raise InvalidArgumentError(f"window size must be >= 1, got {size}", field="window")
        if not 1 <= step <= size:
            raise InvalidArgumentError(
                f"window step must be in 1..{size} (the window size), got {step}", field="step"
            )
        self.size = size
        self.step = step
        self._samples: deque[T] = deque(maxlen=size)
        self._since = 0
        self.index = -1
        """The index of the last window handed out (-1 before the first)."""
        self.seen = 0
        """Samples added since the last :meth:`reset`."""

    def add(self, sample: T) -> list[T] | None:
        """Add one sample; return the window's samples when a window is due, else ``None``."""
        self._samples.append(sample)
        self.seen += 1
        self._since += 1
        if len(self._samples) < self.size:
            return None
        if self.index >= 0 and self._since < self.step:
            return None
        self._since = 0
        self.index += 1
        return list(self._samples)

    def extend(self, samples: Iterable[T]) -> Iterator[tuple[int, list[T]]]:
        """Add ``samples``; yield ``(index, window)`` for every window that fell due."""
        for sample in samples:
            window = self.add(sample)
            if window is not None:
                yield self.index, window

    def contents(self) -> list[T]:
        """The samples held now (up to ``size``, oldest first)."""
        return list(self._samples)

    def reset(self) -> None:
        """Forget the samples (a new baseline or model version); window indexes keep rising."""
        self._samples.clear()
        self._since = 0
        self.seen = 0

    def __len__(self) -> int:
        return len(self._samples)
