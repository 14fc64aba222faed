"""Processes seen from outside: are they alive, are they still the ones we started, signal them.

Standard library only, outside the layers (like :mod:`tideflow.net`): the executors watch
their jobs with it, and the CLI waits with it for a stopped server to exit.

A pid alone is not an identity: after a crash and a reboot-free restart, a dead job's pid may
belong to another program. Linux's ``/proc/<pid>/stat`` gives each process's start time (in
clock ticks since boot); together with the pid it names one process for good. Where ``/proc``
is missing, the start time is ``None`` and only the pid is checked.
"""

from __future__ import annotations

import os
import signal


def _read_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` from the state on (``OSError`` if unreadable)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read().decode(errors="replace")
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rfind(")") + 2 :].split()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return _read_stat(pid)
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or ``None`` if unknown."""
    fields = _stat_fields(pid)
    # Fields after the name start at field 3 (state); the start time is field 22.
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def owner(pid: int) -> int | None:
    """The uid process ``pid`` runs as, or ``None`` if unknown (gone, or no ``/proc``)."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def is_alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if ``started`` is given, is that same process.

    An exited process stays a zombie until its parent (or init, for a daemon) reaps it, and
    ``kill(pid, 0)`` still finds it; where init reaps lazily (every ~2 s on this project's
    machines) waiting on ``kill`` alone waited that long after every exit.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else: not ours, but alive
    try:
        fields = _read_stat(pid)
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # reaped meanwhile; or no /proc (not Linux)
    except OSError:
        return True
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return False
    return started is None or len(fields) <= 19 or int(fields[19]) == started


def signal_group(pid: int, signum: signal.Signals) -> bool:
    """Send ``signum`` to the process group led by ``pid``; ``False`` if it is gone."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True
