"""Concurrency: threads and processes creating versions of one model and racing deploys.

Synchronisation is by barriers and pipes, never sleeps: every writer is released at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tideflow.client import Client, connect
from tideflow.domain import ModelStatus, ModelVersionEvent

THREADS = 8
PER_THREAD = 15
PROCESS_VERSIONS = 40
PROCESS_DEPLOYS = 15

WORKER = """
import json, sys
from tideflow.client import connect
url, project, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with connect(url, project=project) as client:
    print("ready", flush=True)
    sys.stdin.readline()
    versions = [client.models.create_version("ctr").version for _ in range(count)]
print(json.dumps(versions), flush=True)
"""

DEPLOY_WORKER = """
import json, sys
from tideflow.client import connect
url, project, versions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with connect(url, project=project) as client:
    print("ready", flush=True)
    sys.stdin.readline()
    deployed = [client.models.deploy("ctr", v).version for v in versions]
print(json.dumps(deployed), flush=True)
"""


def run_together(workers: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(workers))
    results: list[object] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = workers[index]()
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_threads_get_distinct_consecutive_versions_each_with_its_event(client: Client) -> None:
    client.models.create("ctr")

    def create() -> list[int]:
        return [client.models.create_version("ctr").version for _ in range(PER_THREAD)]

    results = run_together([create] * THREADS)
    numbers = sorted(n for result in results for n in result)  # type: ignore[attr-defined]
    assert numbers == list(range(1, THREADS * PER_THREAD + 1))
    events = client.events.list(key="ctr", event_type=ModelVersionEvent.GENERATED, limit=1000)
    assert sorted(json.loads(e.value)["version"] for e in events) == numbers
    offsets = [e.offset for e in events]
    # Nothing else writes while this test runs: the appenders' offsets are gap-free.
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))


def test_concurrent_deploys_leave_exactly_one_deployed(store_url: str, project: str) -> None:
    # Separate clients: separate engines and connections, as separate servers would have.
    clients = [connect(store_url, project=project) for _ in range(4)]
    try:
        main = clients[0]
        main.models.create("ctr")
        for round_ in range(5):
            versions = []
            for _ in clients:
                version = main.models.create_version("ctr").version
                main.models.set_status("ctr", version, "VALIDATED")
                versions.append(version)
            run_together(
                [
                    (lambda c=c, v=v: c.models.deploy("ctr", v))
                    for c, v in zip(clients, versions, strict=True)
                ]
            )
            statuses = [v.status for v in main.models.list_versions("ctr", limit=1000)]
            assert statuses.count(ModelStatus.DEPLOYED) == 1, f"round {round_}: {statuses}"
        deployed = main.events.list(key="ctr", event_type=ModelVersionEvent.DEPLOYED, limit=1000)
        deprecated = main.events.list(
            key="ctr", event_type=ModelVersionEvent.DEPRECATED, limit=1000
        )
        assert len(deployed) == 5 * len(clients)
        assert len(deprecated) == len(deployed) - 1
        # History and events agree: every DEPLOYED change has its event.
        history = [
            change
            for v in main.models.list_versions("ctr", limit=1000)
            for change in main.models.history("ctr", v.version)
            if change.status is ModelStatus.DEPLOYED
        ]
        assert len(history) == len(deployed)
    finally:
        for c in clients:
            c.close()


def run_processes(store_url: str, worker: str, arguments: list[list[str]]) -> list[Any]:
    """Run one ``worker`` process per argument list, release them together, return their JSON."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", worker, store_url, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args in arguments
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0] * len(processes)
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def test_two_processes_deploying_leave_exactly_one_deployed(
    store_url: str, project: str, client: Client
) -> None:
    client.models.create("ctr")
    for _ in range(2 * PROCESS_DEPLOYS):
        version = client.models.create_version("ctr").version
        client.models.set_status("ctr", version, "VALIDATED")
    mine = [list(range(1, 2 * PROCESS_DEPLOYS + 1, 2)), list(range(2, 2 * PROCESS_DEPLOYS + 1, 2))]
    results = run_processes(
        store_url, DEPLOY_WORKER, [[project, json.dumps(versions)] for versions in mine]
    )
    assert results == mine
    statuses = [v.status for v in client.models.list_versions("ctr", limit=1000)]
    assert statuses.count(ModelStatus.DEPLOYED) == 1
    assert statuses.count(ModelStatus.DEPRECATED) == 2 * PROCESS_DEPLOYS - 1
    events = client.events.list(key="ctr", limit=1000)
    deployed = [e for e in events if e.event_type == ModelVersionEvent.DEPLOYED]
    deprecated = [e for e in events if e.event_type == ModelVersionEvent.DEPRECATED]
    assert len(deployed) == 2 * PROCESS_DEPLOYS
    assert len(deprecated) == 2 * PROCESS_DEPLOYS - 1
    # Replaying the events in offset order never shows two versions DEPLOYED at once, and ends
    # on the version the store says is deployed.
    live: set[int] = set()
    for e in events:
        version = json.loads(e.value)["version"]
        if e.event_type == ModelVersionEvent.DEPRECATED:
            live.remove(version)
        elif e.event_type == ModelVersionEvent.DEPLOYED:
            live.add(version)
            assert len(live) == 1, f"two deployed at offset {e.offset}: {live}"
    assert live == {client.models.get_version("ctr", status="DEPLOYED").version}


def test_two_processes_get_distinct_consecutive_versions(
    store_url: str, project: str, client: Client
) -> None:
    client.models.create("ctr")
    numbers = run_processes(store_url, WORKER, [[project, str(PROCESS_VERSIONS)]] * 2)
    assert all(n == sorted(n) for n in numbers)
    assert sorted(numbers[0] + numbers[1]) == list(range(1, 2 * PROCESS_VERSIONS + 1))
    events = client.events.list(key="ctr", limit=1000)
    assert len(events) == 2 * PROCESS_VERSIONS
