"""The test kit Tideflow's own suite and its users share.

* :class:`InProcessServer` -- the real server in the test's process, on free loopback ports
  with a temporary home and store, optionally on a :class:`ManualClock`;
* :class:`TideflowTestServer` -- the real server as a child process (``tideflow server start``),
  which a test can kill and restart to check what survives a crash;
* :class:`TideflowTestCluster` -- several such servers on one PostgreSQL or MariaDB database,
  with a short lease, and who leads and who beats as the database says;
* :class:`ManualClock` -- a scheduler clock that moves only when the test says so;
* :func:`run_cli` -- the ``tideflow`` command in a child process, away from the caller's
  ``TIDEFLOW_*`` settings; :func:`invoke_cli` -- the same in this process;
* :func:`wait_until` -- poll for what no event announces, failing with what was awaited.

The pytest fixtures built on them (``tideflow_server``, ``tideflow_client``,
``tideflow_clock``, ``tideflow_server_process``) live in :mod:`tideflow.testing.plugin`,
which a conftest.py turns on with ``pytest_plugins`` (no ``pytest11`` entry point: see
docs/testing.md for why). Only that module imports pytest: this package works in any test
runner, and pytest stays a development dependency. (docs/testing.md, "Testing your own workflows", shows them in use.)
"""

from tideflow.scheduler.clock import ManualClock
from tideflow.testing.cli import invoke_cli, run_cli
from tideflow.testing.cluster import TideflowTestCluster
from tideflow.testing.inprocess import InProcessServer
from tideflow.testing.process import TideflowTestServer
from tideflow.testing.wait import WaitTimeout, wait_until

__all__ = [
    "InProcessServer",
    "ManualClock",
    "TideflowTestCluster",
    "TideflowTestServer",
    "WaitTimeout",
    "invoke_cli",
    "run_cli",
    "wait_until",
]
