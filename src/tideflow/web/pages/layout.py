"""A small layered ("Sugiyama-style") layout for directed graphs, computed on the server.

The pages draw graphs as plain SVG rendered by the templates, so the browser needs no layout
library and the page is complete without JavaScript. The algorithm is the classic one, kept
small because Tideflow's graphs are small (tens of jobs, a few nodes each):

1. break cycles (control edges may loop: event-driven workflows are cyclic) by reversing the
   edges a depth-first search finds going back;
2. put every box in a column: its longest path from a source (left to right);
3. order each column by the mean position of its neighbours in the previous one, a few sweeps
   both ways, which removes most crossings;
4. give columns the width of their widest box and stack boxes vertically, centred.

Boxes have their own sizes, so the same function lays out nodes inside a job and jobs inside a
workflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

COLUMN_GAP = 90.0
ROW_GAP = 36.0
SWEEPS = 4


@dataclass
class Box:
    """A box to place: its id and size in; its top-left corner out."""

    id: str
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0

    @property
    def right(self) -> float:
        """The x of its right side."""
        return self.x + self.width

    @property
    def middle(self) -> float:
        """The y of its horizontal middle line."""
        return self.y + self.height / 2


@dataclass
class Layout:
    """Where every box went, and the size of the whole drawing."""

    boxes: dict[str, Box] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0
    back_edges: set[tuple[str, str]] = field(default_factory=set)
    """Edges drawn against the flow (they closed a cycle)."""


def _back_edges(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first search from the boxes in order."""
    out: dict[str, list[str]] = {i: [] for i in ids}
    for source, target in edges:
        out[source].append(target)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(out[child])))
    return back


def layered(
    boxes: Sequence[Box],
    edges: Sequence[tuple[str, str]],
    *,
    column_gap: float = COLUMN_GAP,
    row_gap: float = ROW_GAP,
) -> Layout:
    """Place ``boxes`` in columns so that ``edges`` run left to right where they can.

    Args:
        boxes: The boxes, in a stable order (it breaks ties).
        edges: ``(source id, target id)`` pairs; unknown ids and self-loops are ignored.
        column_gap: Horizontal space between columns (room for edge labels).
        row_gap: Vertical space between boxes of one column.
    """
    ids = [box.id for box in boxes]
    known = set(ids)
    edges = [(s, t) for s, t in dict.fromkeys(edges) if s in known and t in known and s != t]
    back = _back_edges(ids, edges)
    forward = [(t, s) if (s, t) in back else (s, t) for s, t in edges]
    preds: dict[str, list[str]] = {i: [] for i in ids}
    for source, target in forward:
        preds[target].append(source)
    column: dict[str, int] = {}

    def place(node: str) -> int:
        # Iterative longest path (a graph of 100 jobs in a chain would overflow recursion).
        stack = [node]
        while stack:
            top = stack[-1]
            missing = [p for p in preds[top] if p not in column]
            if missing:
                stack.extend(missing)
                continue
            column[top] = 1 + max((column[p] for p in preds[top]), default=-1)
            stack.pop()
        return column[node]

    for node in ids:
        if node not in column:
            place(node)
    columns: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for node in ids:
        columns[column[node]].append(node)
    _order(columns, forward)
    by_id = {box.id: box for box in boxes}
    heights = [
        sum(by_id[i].height for i in col) + row_gap * max(len(col) - 1, 0) for col in columns
    ]
    total_height = max(heights, default=0.0)
    x = 0.0
    for col, height in zip(columns, heights, strict=True):
        width = max(by_id[i].width for i in col)
        y = (total_height - height) / 2
        for node in col:
            box = by_id[node]
            box.x = x + (width - box.width) / 2
            box.y = y
            y += box.height + row_gap
        x += width + column_gap
    return Layout(
        boxes=by_id,
        width=max(x - column_gap, 0.0),
        height=total_height,
        back_edges=back,
    )


def _order(columns: list[list[str]], edges: Sequence[tuple[str, str]]) -> None:
    """Reorder each column by the barycentre of its neighbours, sweeping right then left."""
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for source, target in edges:
        preds.setdefault(target, []).append(source)
        succs.setdefault(source, []).append(target)

    def sweep(sequence: Sequence[int], neighbours: dict[str, list[str]], step: int) -> None:
        for index in sequence:
            previous = columns[index - step]
            rank = {node: position for position, node in enumerate(previous)}
            current = columns[index]

            def key(node: str, position: int, rank: dict[str, int] = rank) -> float:
                near = [rank[n] for n in neighbours.get(node, ()) if n in rank]
                return sum(near) / len(near) if near else float(position)

            keyed = [(key(node, pos), pos, node) for pos, node in enumerate(current)]
            columns[index] = [node for _, _, node in sorted(keyed)]

    for _ in range(SWEEPS):
        sweep(range(1, len(columns)), preds, 1)
        sweep(range(len(columns) - 2, -1, -1), succs, -1)
