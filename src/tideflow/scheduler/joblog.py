"""Reading job attempts' log files for ``c.jobs.logs`` and ``tideflow job logs``.

The local executor writes each attempt's stdout and stderr to a file under ``$TIDEFLOW_HOME``
and records its path as the attempt's ``log_uri`` (docs/executors.md). The server serves
those files -- and only files under its home: a ``log_uri`` anywhere else (a path written by
something else into the store, a symlink out of the home) is refused, so the RPC can never be
used to read arbitrary files of the server's machine.

Reads are by byte offset and bounded (:data:`MAX_LOG_READ` per call), so a follower asks for
what came after its last read and a huge log never travels in one message.
"""

from __future__ import annotations

import os
from pathlib import Path

from tideflow.errors import FailedPreconditionError, InvalidArgumentError

MAX_LOG_READ = 1024 * 1024
"""Most bytes one read returns (a follower reads again from where it stopped)."""
MAX_TAIL_LINES = 100_000


def log_path(root: Path, uri: str) -> Path:
    """The file of ``uri`` (a path or ``file://`` URL), if it lies under ``root``.

    Raises:
        FailedPreconditionError: It is elsewhere (symlinks resolved): not served.
    """
    raw = uri[len("file://") :] if uri.startswith("file://") else uri
    path = Path(os.path.realpath(raw))
    home = Path(os.path.realpath(root))
    if not path.is_relative_to(home):
        raise FailedPreconditionError(
            f"log {uri!r} is outside the Tideflow home {str(root)!r}: not served"
        )
    return path


def check_read_arguments(after: int, tail: int | None, limit: int) -> None:
    """Refuse offsets, tails and limits that make no sense.

    Raises:
        InvalidArgumentError: A negative offset, a tail outside 1..100000 or a limit outside
            1..1 MiB.
    """
    for value, what in ((after, "after"), (limit, "limit")):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgumentError(f"{what} must be a whole number, got {value!r}", field=what)
    if after < 0:
        raise InvalidArgumentError(f"after must be >= 0, got {after}", field="after")
    if not 1 <= limit <= MAX_LOG_READ:
        raise InvalidArgumentError(
            f"limit must be between 1 and {MAX_LOG_READ}, got {limit}", field="limit"
        )
    if tail is not None and (
        not isinstance(tail, int) or isinstance(tail, bool) or not 1 <= tail <= MAX_TAIL_LINES
    ):
        raise InvalidArgumentError(
            f"tail must be a number of lines between 1 and {MAX_TAIL_LINES}, got {tail!r}",
            field="tail",
        )


def read_log(path: Path, *, after: int, tail: int | None, limit: int) -> tuple[str, int, int, int]:
    """Read ``path`` from byte ``after`` (or its last ``tail`` lines), at most ``limit`` bytes.

    Returns:
        ``(text, start, end, size)``: the text, the byte offsets it spans and the file's size
        (all 0 when the file does not exist yet).
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return "", 0, 0, 0
    with handle:
        size = os.fstat(handle.fileno()).st_size
        start = min(after, size)
        if tail is not None:
            start = max(start, _tail_start(handle, size, tail, limit))
        handle.seek(start)
        data = handle.read(min(limit, size - start))
    end = start + len(data)
    if end < size:  # cut inside the file: do not split a UTF-8 character
        keep = len(data)
        while keep > 0 and data[keep - 1] & 0xC0 == 0x80:
            keep -= 1
        if keep > 0 and data[keep - 1] >= 0xC0:
            keep -= 1
        if keep > 0:
            data, end = data[:keep], start + keep
    return data.decode("utf-8", errors="replace"), start, end, size


def _tail_start(handle: object, size: int, lines: int, limit: int) -> int:
    """The offset where the last ``lines`` lines start (at most ``limit`` bytes back)."""
    import io

    assert isinstance(handle, io.BufferedReader)
    floor = max(0, size - limit)
    position = size
    # A final newline ends the last line; it does not start an empty one.
    handle.seek(max(0, size - 1))
    wanted = lines + 1 if size and handle.read(1) == b"\n" else lines
    found = 0
    while position > floor:
        step = min(8192, position - floor)
        position -= step
        handle.seek(position)
        block = handle.read(step)
        for index in range(len(block) - 1, -1, -1):
            if block[index] == 0x0A:
                found += 1
                if found == wanted:
                    return position + index + 1
    return floor
