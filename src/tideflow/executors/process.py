"""Processes seen from outside: are they alive, are they still the ones we started, signal them.

A pid alone is not an identity: after a crash and a reboot-free restart, a dead job's pid may
belong to another program. Linux's ``/proc/<pid>/stat`` gives each process's start time (in
clock ticks since boot); together with the pid it names one process for good. Where ``/proc``
is missing, the start time is ``None`` and only the pid is checked.
"""

from __future__ import annotations

import os
import signal


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rfind(")") + 2 :].split()


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
    """Whether ``pid`` runs (not a zombie) and, if ``started`` is given, is that same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else: not ours, but alive
    fields = _stat_fields(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):  # exited, not yet reaped by its (new) parent
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
