"""A job process's watcher: how it ended, kept where a restarted server can read it.

A job outlives the Tideflow server, but its exit status does not: once the process that started
it is gone, the job is re-parented to init, and an executor re-attached after a restart sees only
that its pid vanished. So the process an executor starts stays as the job's watcher: it forks the
job, waits for it, writes ``{"returncode", "time"}`` (``returncode`` negative for a signal, as
:func:`os.waitstatus_to_exitcode` gives it) to an exit file, and exits the way the job did, so
whoever reaps the watcher sees the job's own status.

The watcher is in the job's session and process group: a stop's signal to the group reaches
both, and the watcher ignores SIGTERM and SIGINT so that it outlives a graceful stop to record
it (a SIGKILL to the group ends both; the executor that sent it is alive and knows why).

The local executor's fork server calls :func:`watch_exit` in each child; other platforms that
start a process on this host run ``python -m tideflow.executors.watch EXIT_FILE -- ARGV...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

EXIT_FILE = "exit.json"
"""The exit file's name, in the attempt's control folder."""


def watch_exit(path: str) -> None:
    """Fork the job off and stay as its watcher; returns in the job's process only."""
    pid = os.fork()
    if pid == 0:
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 1
    try:
        os.closerange(3, 65536)  # pipes the job must see closed when it ends
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            fd = os.open(path + ".tmp", flags, 0o644)
            with os.fdopen(fd, "w") as out:
                json.dump({"returncode": code, "time": time.time()}, out)
            os.replace(path + ".tmp", path)
    finally:
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code if code >= 0 else 1)


def read_exit(path: Path) -> tuple[int | None, float | None]:
    """The job's exit code and end time from its exit file (``None`` where unknown)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code, when = data.get("returncode"), data.get("time")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        float(when) if isinstance(when, (int, float)) and not isinstance(when, bool) else None,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tideflow.executors.watch EXIT_FILE -- PROGRAM ARGS...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: python -m tideflow.executors.watch EXIT_FILE -- PROGRAM ARGS...\n")
        sys.exit(2)
    path, program = args[0], args[2:]
    watch_exit(path)
    try:
        os.execvp(program[0], program)
    except OSError as exc:
        sys.stderr.write(f"cannot run {program[0]}: {exc}\n")
        os._exit(127)


if __name__ == "__main__":
    main()
