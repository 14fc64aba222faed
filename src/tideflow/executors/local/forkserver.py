"""The warm start path: a fork server that has imported the job runtime forks one child per job.

A fresh interpreter starts in ~12 ms, but importing grpc, cloudpickle and Tideflow's runtime
costs over 100 ms more; forking a process that has already imported them costs ~2 ms. So the
local executor starts one fork server (``python -m tideflow.executors.local.forkserver MODULE...``)
which imports the named modules once and then forks a child per job. The server process itself
is never forked: it runs threads (gRPC, HTTP), and forking a threaded process is unsafe. The
fork server is single-threaded.

Protocol: JSON lines. The executor writes requests to the fork server's stdin::

    {"op": "spawn", "key": K, "cwd": DIR, "log": FILE, "env": {...},
     "entry": "module:function", "arg": DIR}          # fork, then call function(arg)
    {"op": "spawn", ..., "argv": [PYTHON, ...]}       # fork, then exec argv (another venv)
    (optional in both: "claim": FILE -- the child first creates FILE with O_EXCL and its pid,
    and exits with CLAIM_LOST_EXIT, running nothing, if FILE exists; "exit": FILE -- the
    child stays as the job's watcher (:mod:`tideflow.executors.watch`) and writes the job's
    exit code and end time to FILE, which outlive the fork server; "user": {...} -- the
    child becomes that OS user (:mod:`tideflow.executors.identity`) right after opening its
    log, before it claims, changes directory, imports or execs anything)

and reads replies from its stdout: ``{"op": "spawned", "key", "pid"}`` (or ``"error"``),
``{"op": "running", "key"}`` when the child writes ``running`` to its status pipe, and
``{"op": "exit", "key", "pid", "returncode"}`` (negative: killed by that signal) once it is
reaped. Replies for one child always come in that order.

Each child starts a new session (``setsid``): it has its own process group, which a STOP signals
as a whole, and it outlives both the fork server and the Tideflow server. The fork server exits
when its stdin closes (the executor closed or died); its children keep running and are later
re-attached from their control files (:mod:`tideflow.domain.attempt`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

from tideflow import pids
from tideflow.domain.attempt import STATUS_FD_VARIABLE
from tideflow.executors import identity
from tideflow.executors.watch import watch_exit
from tideflow.settings import scrubbed_environment

STATUS_FD = 3
"""The file descriptor a child's status pipe has in the child."""
CLAIM_LOST_EXIT = 75
"""How a child exits when another process already claimed its attempt (it ran nothing)."""

# -- the fork server process -------------------------------------------------------------------


class _Server:
    """The fork server's single-threaded loop."""

    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        self.pending = b""
        self.children: dict[int, tuple[str, int | None]] = {}  # pid -> (key, status pipe)
        self.by_pipe: dict[int, int] = {}  # status pipe -> pid
        self.running_sent: set[int] = set()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]

    def serve(self) -> None:
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self.wake_w)
        self.selector.register(0, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.send({"op": "ready", "pid": os.getpid()})
        open_input = True
        while open_input:
            for key, _ in self.selector.select():
                fd = int(key.fd)
                if fd == 0:
                    open_input = self._read_requests()
                elif fd == self.wake_r:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                else:
                    self._read_status(fd)
            self._reap()

    def _read_requests(self) -> bool:
        data = os.read(0, 65536)
        if not data:
            return False
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.strip():
                self._spawn(json.loads(line))
        return True

    def _read_status(self, fd: int) -> None:
        try:
            data = os.read(fd, 512)
        except BlockingIOError:
            return
        pid = self.by_pipe[fd]
        if data and pid not in self.running_sent:
            self.running_sent.add(pid)
            self.send({"op": "running", "key": self.children[pid][0]})
        if not data:
            self._close_pipe(pid)

    def _close_pipe(self, pid: int) -> None:
        key, pipe = self.children[pid]
        if pipe is not None:
            self.selector.unregister(pipe)
            del self.by_pipe[pipe]
            os.close(pipe)
            self.children[pid] = (key, None)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self.children:
                continue
            key, pipe = self.children[pid]
            if pipe is not None:  # what the child wrote before it exited comes first
                try:
                    data = os.read(pipe, 512)
                except BlockingIOError:
                    data = b""
                if data and pid not in self.running_sent:
                    self.send({"op": "running", "key": key})
                self._close_pipe(pid)
            del self.children[pid]
            self.running_sent.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            self.send({"op": "exit", "key": key, "pid": pid, "returncode": code})

    def _spawn(self, request: dict[str, Any]) -> None:
        key = str(request["key"])
        try:
            status_r, status_w = os.pipe()
            pid = os.fork()
        except OSError as exc:
            self.send({"op": "spawned", "key": key, "error": f"fork failed: {exc}"})
            return
        if pid == 0:  # the child: never returns
            os.close(status_r)
            _child(request, status_w)
        os.close(status_w)
        os.set_blocking(status_r, False)
        self.children[pid] = (key, status_r)
        self.by_pipe[status_r] = pid
        self.selector.register(status_r, selectors.EVENT_READ)
        self.send({"op": "spawned", "key": key, "pid": pid})


def _claim(path: str) -> bool:
    """Create ``path`` (``O_EXCL``) holding this process's pid; ``False``: it exists already.

    The attempt's own process claims it before running anything, so that an attempt spawned
    again after a crash (its first spawn was never recorded) runs once: the twin exits.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        json.dump({"pid": os.getpid(), "started": pids.start_time(os.getpid())}, out)
    return True


def _child(request: dict[str, Any], status_w: int) -> None:
    """Become the job: log as stdout/stderr, job user, new session, working dir, run or exec.

    The log is opened first, with the fork server's privileges (its folder is the server's,
    so it cannot be a link a job planted), so that a failure to switch users is reported in it.
    """
    code = 1
    try:
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        user = request.get("user")
        if user is not None:
            identity.become(identity.JobUser.from_json(user))
        claim = request.get("claim")
        if claim and not _claim(str(claim)):
            os._exit(CLAIM_LOST_EXIT)
        os.setsid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        exit_file = request.get("exit")
        if exit_file:
            watch_exit(str(exit_file))  # the job continues in a child
        if status_w != STATUS_FD:
            os.dup2(status_w, STATUS_FD)
        os.closerange(STATUS_FD + 1, 65536)  # the protocol pipes, other children's pipes
        os.chdir(request["cwd"])
        os.environ.update(request.get("env") or {})
        os.environ[STATUS_FD_VARIABLE] = str(STATUS_FD)
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        argv = request.get("argv")
        if argv:  # the runtime makes it non-inheritable again once started
            os.set_inheritable(STATUS_FD, True)
            os.execve(argv[0], argv, dict(os.environ))
        os.set_inheritable(STATUS_FD, False)  # the job's own subprocesses must not hold it
        module, _, function = str(request["entry"]).partition(":")
        code = int(getattr(importlib.import_module(module), function)(request["arg"]) or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the process edge of a job: report everything, then exit
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Run a fork server that has imported the modules named in ``argv``."""
    out_fd = os.dup(1)
    null_fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null_fd, 1)  # stray prints must not corrupt the protocol
    os.close(null_fd)
    for module in argv if argv is not None else sys.argv[1:]:
        try:
            importlib.import_module(module)
        except Exception:  # a child imports it again and reports the error in its log
            traceback.print_exc()
    _Server(out_fd).serve()


# -- the executor's side -----------------------------------------------------------------------


class ForkServer:
    """A running fork server, seen from the executor.

    Args:
        preload: Modules the fork server imports before forking.
        on_message: Called on a reader thread with each reply, and with ``{"op": "eof"}`` when
            the fork server has exited.
        python: The interpreter to run it with.
        cwd: Its working directory (default: this process's).
    """

    def __init__(
        self,
        preload: Sequence[str],
        on_message: Callable[[dict[str, Any]], None],
        *,
        python: str = sys.executable,
        cwd: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._on_message = on_message
        self._spawned = False
        self.process = subprocess.Popen(
            [python, "-m", "tideflow.executors.local.forkserver", *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            env=scrubbed_environment(),  # its children are jobs: no server settings
            cwd=cwd,
        )
        self._stdin: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        self._stdout: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        self._reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        """Whether the fork server is still running."""
        return self.process.poll() is None

    def spawn(self, key: str, **request: Any) -> None:
        """Ask for a child (see the module docstring for the fields); the reply comes later.

        Raises:
            BrokenPipeError: The fork server has exited.
        """
        line = (json.dumps({"op": "spawn", "key": key, **request}) + "\n").encode()
        with self._lock:
            self._spawned = True
            self._stdin.write(line)
            self._stdin.flush()

    def _read(self) -> None:
        for line in self._stdout:
            self._on_message(json.loads(line))
        self._on_message({"op": "eof"})

    def close(self) -> None:
        """Close its stdin: it exits, and its children keep running.

        One that was never asked for a child is killed instead: it has nothing to hand over,
        and waiting for it to read the end of its input means waiting for its imports (0.2-2 s
        on a busy machine), which every stop of a server that ran no local job used to pay.
        """
        with self._lock:
            idle = not self._spawned
            with contextlib.suppress(OSError):
                self._stdin.close()
        if idle:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - it exits on EOF at once
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        self._stdout.close()


if __name__ == "__main__":
    main()
