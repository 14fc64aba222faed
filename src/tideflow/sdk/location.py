"""Find where in the user's file a workflow element was declared.

Every node, job and rule remembers ``file:line`` of the user's call, so a graph problem found at
compile time points at the line to fix (frames inside the ``tideflow`` package are skipped).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
# ``tide.job`` is a generator-based context manager: its caller sits behind contextlib's frames.
_SKIPPED_FILES = frozenset({contextlib.__file__})


def user_location() -> str | None:
    """``file:line`` of the nearest caller outside the ``tideflow`` package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (
            filename.startswith(_PACKAGE_DIR)
            or filename in _SKIPPED_FILES
            or filename.startswith("<frozen ")
        ):
            return f"{_shorten(filename)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _shorten(filename: str) -> str:
    """Show paths under the working directory relative to it, others in full."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if relative.startswith(os.pardir) else relative
