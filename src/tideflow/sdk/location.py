"""Find where in the user's file a workflow element was declared.

Every node, job and rule remembers ``file:line`` of the user's call, so a graph problem found at
compile time points at the line to fix (frames inside the ``tideflow`` package are skipped).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import FrameType

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep
# ``tide.job`` is a generator-based context manager: its caller sits behind contextlib's frames.
_SKIPPED_FILES = frozenset({contextlib.__file__})


def user_location() -> str | None:
    """``file:line`` of the nearest caller outside the ``tideflow`` package."""
    frame = _user_frame()
    return None if frame is None else f"{_shorten(frame.f_code.co_filename)}:{frame.f_lineno}"


def user_file() -> str | None:
    """The absolute path of the nearest caller's file outside ``tideflow``, if it is a file.

    A workflow remembers it, so ``tide.submit(wf)`` knows which directory to package.
    """
    frame = _user_frame()
    if frame is None or frame.f_code.co_filename.startswith("<"):
        return None
    return str(Path(frame.f_code.co_filename).absolute())


def _user_frame() -> FrameType | None:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (
            filename.startswith(_PACKAGE_DIR)
            or filename in _SKIPPED_FILES
            or filename.startswith("<frozen ")
        ):
            return frame
        frame = frame.f_back
    return None


def _shorten(filename: str) -> str:
    """Show paths under the working directory relative to it, others in full."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if relative.startswith(os.pardir) else relative
