"""The entry point of a Ray job: runs one attempt with the engine's runtime, inside Ray.

``python -m tideflow.executors.ray.entry tideflow.engines.python.runtime:run_attempt`` is the
job's entrypoint; Ray starts it in the unpacked ``working_dir`` -- the attempt's working
directory as the ray executor prepared it (code package, ``attempt.json``, ``plan.json``). It
runs the attempt in a private copy of that directory (Ray shares one unpacked copy between
jobs whose packages are identical, and the runtime writes its control files there), and
tells the executor, which only sees the job's log, two things through marker lines:

- ``RUNNING_MARKER`` once the runtime reports its processors open (its status pipe);
- ``RESULT_MARKER`` + the runtime's ``result.json`` when the attempt ends.

SIGTERM (Ray's ``stop_job``) reaches the runtime, which closes the processors and ends STOPPED.
The runtime is named by string and imported here: executors and engines do not import each
other.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from tideflow.domain.attempt import (
    ATTEMPT_DIR_VARIABLE,
    RUNNING_LINE,
    STATUS_FD_VARIABLE,
    AttemptFiles,
)

RUNNING_MARKER = "[tideflow-ray] RUNNING"
RESULT_MARKER = "[tideflow-ray] RESULT "


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _watch_status(read_fd: int) -> None:
    """Relay the runtime's ``running`` line from its status pipe to the job's output."""
    with os.fdopen(read_fd, "rb") as pipe:
        if pipe.readline() == RUNNING_LINE:
            _announce(RUNNING_MARKER)


def main(argv: list[str] | None = None) -> int:
    """Run the attempt prepared in the current directory with runtime ``argv[0]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m tideflow.executors.ray.entry MODULE:FUNCTION\n")
        return 2
    module, _, function = args[0].partition(":")
    source = Path.cwd()
    workdir = Path(tempfile.mkdtemp(prefix="tideflow-attempt-"))
    try:
        shutil.copytree(source, workdir, dirs_exist_ok=True, symlinks=True)
        files = AttemptFiles(workdir)
        for left in (files.running, files.result, files.heartbeat, files.spawned, files.stop):
            left.unlink(missing_ok=True)  # an earlier job's, in a shared unpacked copy
        os.chdir(workdir)
        os.environ[ATTEMPT_DIR_VARIABLE] = str(workdir)
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        os.environ[STATUS_FD_VARIABLE] = str(write_fd)
        threading.Thread(target=_watch_status, args=(read_fd,), daemon=True).start()
        runtime = getattr(importlib.import_module(module), function)
        code = int(runtime(str(workdir)))
        if files.result.exists():
            _announce(RESULT_MARKER + files.result.read_text().strip())
        return code
    finally:
        os.chdir(source)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
