"""Pickle processors so that a failing job's traceback names the user's file and line.

cloudpickle (3.1 and later) replaces the file name of every code object it pickles by value
with ``"<dynamic-code>"``, so that a payload is the same bytes wherever its code was written.
A processor defined in the user's workflow file is pickled by value (the file is no module the
job can import), so its failure in a job read ``File "<dynamic-code>", line 6, in boom``: a
line number without the file it counts in.

:func:`dumps` pickles with a subclass of cloudpickle's pickler that puts the real file name
back. The traceback then names the file the user wrote (and, when the job runs where that file
is, Python's traceback shows the line itself). The price: a processor's payload now depends on
the path it was submitted from, so one workflow submitted from two checkouts stores two
payloads -- a small cost next to a traceback one can follow.

If cloudpickle's code reducer is ever renamed, :func:`dumps` falls back to cloudpickle's own
(``<dynamic-code>`` again, nothing broken).
"""

from __future__ import annotations

import functools
import io
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any

_PLACEHOLDER = "<dynamic-code>"


def _keeping_file_name(reduce: Callable[[types.CodeType], Any]) -> Callable[..., Any]:
    def reduce_code(code: types.CodeType) -> Any:
        constructor, args = reduce(code)
        # The file name is the only top-level str argument that can hold the placeholder (the
        # others are the code's name and qualified name, which are identifiers).
        fixed = tuple(code.co_filename if arg == _PLACEHOLDER else arg for arg in args)
        return constructor, fixed

    return reduce_code


@functools.cache
def _pickler() -> type | None:
    """The pickler of cloudpickle with the file-name-keeping code reducer, or ``None``."""
    import cloudpickle
    from cloudpickle import cloudpickle as implementation

    reduce: Callable[[types.CodeType], Any] | None = getattr(implementation, "_code_reduce", None)
    if reduce is None:
        return None
    table = ChainMap(
        {types.CodeType: _keeping_file_name(reduce)}, cloudpickle.Pickler.dispatch_table
    )
    return type("LocatedPickler", (cloudpickle.Pickler,), {"dispatch_table": table})


def dumps(obj: object) -> bytes:
    """``cloudpickle.dumps(obj)``, keeping the file names of code pickled by value."""
    pickler = _pickler()
    if pickler is None:
        import cloudpickle

        return bytes(cloudpickle.dumps(obj))
    with io.BytesIO() as file:
        pickler(file).dump(obj)
        return file.getvalue()
