"""``tideflow.pids``: a process is alive until it exits, whoever reaps it and when."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tideflow import pids
from tideflow.testing import wait_until


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read().decode()
    return text[text.rfind(")") + 2]


def test_a_running_process_is_alive_and_known_by_its_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = pids.start_time(child.pid)
        assert started is not None
        assert pids.is_alive(child.pid)
        assert pids.is_alive(child.pid, started)
        assert not pids.is_alive(child.pid, started + 1)  # the pid reused by another process
        assert pids.owner(child.pid) == os.getuid()
    finally:
        child.kill()
        child.wait()


def test_an_exited_process_not_yet_reaped_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_until(lambda: _state(child.pid) == "Z", timeout=30, what="the child a zombie")
        os.kill(child.pid, 0)  # kill(pid, 0) still finds it ...
        assert not pids.is_alive(child.pid)  # ... but it has exited
    finally:
        child.wait()
    assert not pids.is_alive(child.pid)  # reaped: gone


def test_signal_group_reaches_the_group_and_reports_a_gone_one() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    assert pids.signal_group(child.pid, signal.SIGTERM)
    assert child.wait(30) == -signal.SIGTERM
    assert not pids.signal_group(child.pid, signal.SIGTERM)
