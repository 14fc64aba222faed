"""A local standalone Flink cluster on loopback, started from the PyFlink package.

The cluster lives in a directory of its own (``$TIDEFLOW_HOME/engines/flink/cluster`` for the
executor's embedded default): its own ``conf/`` (every address 127.0.0.1, free ports picked at
start, ``python.executable`` = the PyFlink environment's interpreter, or the workers fail with
"No module named 'pyflink'"), logs, pid files, checkpoints and a ``cluster.json`` naming its REST
address. It is started lazily -- when the first Flink job needs it -- and reused by every later
job and executor instance on the same home: it outlives the server, like the jobs on it.
:meth:`LocalFlinkCluster.stop` (``tideflow engines stop flink``) shuts it down.

The JobManager and TaskManager are started with ``bin/jobmanager.sh`` and ``bin/taskmanager.sh``
(not ``start-cluster.sh``, which reads ``masters`` / ``workers`` and may use ssh), with
``FLINK_CONF_DIR`` and ``env.pid.dir`` pointing into the cluster directory so that two clusters
on one machine never share pid files.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tideflow.errors import UnavailableError
from tideflow.executors.flink.environment import FlinkEnvironment
from tideflow.executors.flink.rest import FlinkRest
from tideflow.settings import scrubbed_environment

START_TIMEOUT = 180.0
CLUSTER_FILE = "cluster.json"
# The client's JVM (``bin/flink run``) lives for one submission: the quick C1 compiler alone
# gets it there sooner than tiered compilation, whose C2 work only pays off in long-lived JVMs
# (measured on 2 busy cores: a PyFlink submission took ~40 % less).
CLIENT_JAVA_OPTS = "-XX:TieredStopAtLevel=1"


class FlinkClusterError(UnavailableError):
    """The local Flink cluster did not start (the message holds its log's last lines)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def package_java_opts(flink_home: Path) -> str:
    """The JVM options (``--add-opens`` ...) the package's own ``config.yaml`` gives every JVM.

    Java 17 refuses Flink's reflection without them, so every conf directory Tideflow writes
    (the local cluster's and a remote cluster's client conf) carries them.
    """
    original = (flink_home / "conf" / "config.yaml").read_text()
    match = re.search(r"^\s*all:\s*(.+)$", original, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


class LocalFlinkCluster:
    """One local standalone cluster (a JobManager and a TaskManager) under ``root``.

    Args:
        root: The cluster's directory.
        environment: The PyFlink environment whose package is ``FLINK_HOME``.
        task_slots: Slots of the TaskManager (how many job tasks run at once).
    """

    def __init__(self, root: Path, environment: FlinkEnvironment, *, task_slots: int = 8) -> None:
        self.root = Path(root)
        self.environment = environment
        self.task_slots = task_slots

    @property
    def conf_dir(self) -> Path:
        """``FLINK_CONF_DIR``."""
        return self.root / "conf"

    @property
    def log_dir(self) -> Path:
        """Where the JobManager and TaskManager write their logs."""
        return self.root / "log"

    def address(self) -> str | None:
        """The REST address recorded by the last start, if any."""
        try:
            return str(json.loads((self.root / CLUSTER_FILE).read_text())["rest"])
        except (OSError, ValueError, KeyError):
            return None

    def running_address(self) -> str | None:
        """The REST address when the cluster answers with a TaskManager, else None."""
        address = self.address()
        if address is not None and FlinkRest(address, timeout=3.0).alive():
            return address
        return None

    def ensure_started(self, *, timeout: float = START_TIMEOUT) -> str:
        """The REST address of the running cluster, starting it first if it is down.

        Serialised by a lock file, so concurrent callers (threads, executors, processes) start
        it once.

        Raises:
            FlinkEnvironmentError: The PyFlink environment is not set up.
            FlinkClusterError: It did not answer within ``timeout`` seconds.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            address = self.running_address()
            if address is not None:
                return address
            self._stop_daemons()  # a half-dead earlier cluster must not hold the pid files
            try:
                return self._start(timeout)
            except FlinkClusterError:
                # Once more: a JobManager starved of CPU at start gives up for good.
                self._stop_daemons()
                return self._start(timeout)

    def _start(self, timeout: float) -> str:
        flink_home = self.environment.flink_home()
        rest_port = free_port()
        self._write_conf(flink_home, rest_port)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env(flink_home)
        # Both daemons start at once (each script runs JVMs of its own before its daemon's):
        # the TaskManager retries its registration until the JobManager answers.
        results = _run_scripts(flink_home, ("jobmanager.sh", "taskmanager.sh"), "start", env)
        for script, (returncode, output) in results.items():
            if returncode != 0:
                raise FlinkClusterError(f"{script} start failed ({returncode}): {output[-1500:]}")
        address = f"http://127.0.0.1:{rest_port}"
        rest = FlinkRest(address, timeout=3.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._daemons_alive():
                break  # the JobManager or TaskManager exited: no use waiting
            if rest.alive():
                tmp = self.root / (CLUSTER_FILE + ".tmp")
                tmp.write_text(json.dumps({"rest": address, "started": time.time()}) + "\n")
                tmp.replace(self.root / CLUSTER_FILE)
                return address
            time.sleep(0.5)
        tail = self.log_tail()
        self._stop_daemons()
        raise FlinkClusterError(
            f"the local Flink cluster in {str(self.root)!r} did not answer at {address} (within "
            f"{timeout:.0f} s, or a daemon exited); its log ends:\n{tail}"
        )

    def _daemons_alive(self) -> bool:
        """Whether every process in the cluster's pid files still runs."""
        for pid_file in self.root.glob("*.pid"):
            for line in pid_file.read_text().split():
                try:
                    os.kill(int(line), 0)
                except (ValueError, ProcessLookupError):
                    return False
                except PermissionError:
                    continue
        return True

    def env(self, flink_home: Path | None = None) -> dict[str, str]:
        """The environment Flink's scripts (and ``bin/flink``) run with for this cluster."""
        home = flink_home or self.environment.flink_home()
        # The cluster's processes and the client run user code: no server settings for them.
        env = {
            k: v
            for k, v in scrubbed_environment().items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            {
                "FLINK_HOME": str(home),
                "FLINK_CONF_DIR": str(self.conf_dir),
                "FLINK_LOG_DIR": str(self.log_dir),
                "FLINK_PID_DIR": str(self.root),
                "PATH": f"{self.environment.python.parent}:{env.get('PATH', '')}",
            }
        )
        return env

    def _write_conf(self, flink_home: Path, rest_port: int) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        java_opts = package_java_opts(flink_home)
        python = str(self.environment.python)
        settings = {
            "env.java.opts.all": java_opts,
            "env.java.opts.client": CLIENT_JAVA_OPTS,
            "env.pid.dir": str(self.root),
            "env.log.dir": str(self.log_dir),
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": free_port(),
            "jobmanager.memory.process.size": "1024m",
            "jobmanager.execution.failover-strategy": "region",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.rpc.port": "0",
            "taskmanager.numberOfTaskSlots": self.task_slots,
            "taskmanager.memory.process.size": "1728m",
            "parallelism.default": 1,
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": rest_port,
            "blob.server.port": "0",
            # Generous timeouts: on a loaded machine the defaults (10 s to start the RPC system,
            # 50 s of missed heartbeats) kill a healthy cluster.
            "pekko.startup-timeout": "120 s",
            "pekko.ask.timeout": "60 s",
            "heartbeat.timeout": 180000,
            # The TaskManager starts beside the JobManager: while it is not up yet, look again
            # after 1 s (default 10 s) -- a retry on loopback costs nothing.
            "cluster.registration.error-delay": "1 s",
            "python.executable": python,
            "python.client.executable": python,
            "execution.checkpointing.dir": f"file://{self.root / 'checkpoints'}",
            "execution.checkpointing.savepoint-dir": f"file://{self.root / 'savepoints'}",
        }
        lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
        (self.conf_dir / "config.yaml").write_text(
            "# Written by Tideflow for a local cluster on loopback.\n" + "\n".join(lines) + "\n"
        )
        for name in ("log4j.properties", "log4j-cli.properties", "log4j-console.properties"):
            source = flink_home / "conf" / name
            if source.exists():
                shutil.copy(source, self.conf_dir / name)
        (self.conf_dir / "masters").write_text(f"127.0.0.1:{rest_port}\n")
        (self.conf_dir / "workers").write_text("127.0.0.1\n")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the JobManager's and TaskManager's logs."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

    def taskmanager_logs(self) -> list[Path]:
        """The TaskManager log files (pointers for job logs)."""
        return sorted(self.log_dir.glob("*taskexecutor*.log"))

    def stop(self) -> None:
        """Stop the JobManager and TaskManager (their jobs end with them)."""
        self._stop_daemons()
        (self.root / CLUSTER_FILE).unlink(missing_ok=True)

    def _stop_daemons(self) -> None:
        if not self.environment.is_ready() or not self.conf_dir.exists():
            return
        # Each stops its own daemons (pid files): the two scripts run at once.
        _run_scripts(
            self.environment.flink_home(),
            ("taskmanager.sh", "jobmanager.sh"),
            "stop-all",
            self.env(),
        )


def _run_scripts(
    flink_home: Path, scripts: tuple[str, ...], command: str, env: dict[str, str]
) -> dict[str, tuple[int, str]]:
    """Run Flink's daemon scripts side by side: each one's exit code and output (stderr first)."""
    running = {
        script: subprocess.Popen(
            ["bash", str(flink_home / "bin" / script), command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for script in scripts
    }
    results = {}
    for script, child in running.items():
        try:
            out, err = child.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            results[script] = (-1, f"timed out after 120 s: {err or out}")
            continue
        results[script] = (child.returncode, err or out)
    return results
