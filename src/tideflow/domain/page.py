"""One page of a listing, with the opaque cursor that fetches the next one.

Cursors are opaque on purpose: callers pass back what they were given, so the store may change
how it pages (by key today) without breaking anyone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Items of one page and the cursor of the next.

    Attributes:
        items: The entities on this page, in listing order.
        next_cursor: Pass it as ``cursor=`` to get the next page; ``None`` on the last page.
    """

    items: tuple[T, ...]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]
