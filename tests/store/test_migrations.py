"""Migrations: upgrade from empty, no autogenerate diff, stale and foreign schemas refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from tideflow.errors import FailedPreconditionError, InvalidArgumentError, UnavailableError
from tideflow.store import SchemaState, Store
from tideflow.store.engine import make_engine
from tideflow.store.migration import (
    HEAD_REVISION,
    head_revision,
    schema_diff,
    schema_status,
    upgrade,
    upgrade_database,
)


def test_empty_database_is_migrated_on_open_and_matches_the_rows(empty_url: str) -> None:
    with Store.open(empty_url) as store:
        with store.engine.connect() as connection:
            assert schema_status(connection).state is SchemaState.CURRENT
        assert schema_diff(store.engine) == []


def test_explicit_upgrade_then_open(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent at head
    finally:
        engine.dispose()
    Store.open(empty_url, migrate=False).close()


def test_empty_database_is_refused_when_migration_is_off(empty_url: str) -> None:
    with pytest.raises(FailedPreconditionError, match="tideflow db upgrade --db"):
        Store.open(empty_url, migrate=False)


def test_stale_schema_is_refused_naming_the_upgrade_command(empty_url: str) -> None:
    # A database left at the first revision by an older Tideflow.
    engine = make_engine(empty_url)
    try:
        upgrade(engine, "0001")
    finally:
        engine.dispose()
    with pytest.raises(
        FailedPreconditionError,
        match=rf"revision 0001 but this Tideflow needs {head_revision()}; run `tideflow db upgrade --db ",
    ):
        Store.open(empty_url)
    upgrade_database(empty_url)
    Store.open(empty_url).close()


def test_unknown_revision_is_refused_as_newer(empty_url: str) -> None:
    Store.open(empty_url).close()
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        with pytest.raises(FailedPreconditionError, match="newer Tideflow"):
            Store.open(empty_url)
    finally:
        engine.dispose()


def test_foreign_database_is_refused(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE project (id INTEGER PRIMARY KEY)"))
        with pytest.raises(FailedPreconditionError, match="no Tideflow schema revision"):
            Store.open(empty_url)
    finally:
        engine.dispose()


def test_head_revision_is_the_newest_shipped_migration() -> None:
    import tideflow.store

    versions = Path(tideflow.store.__file__).parent / "migrations" / "versions"
    newest = max(path.name.split("_", 1)[0] for path in versions.glob("[0-9]*.py"))
    assert head_revision() == newest
    assert newest == HEAD_REVISION  # what a start compares the store with, without Alembic


def test_a_current_store_opens_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'current.db'}"
    Store.open(url).close()
    probe = (
        "import sys; from tideflow.store import Store; "
        f"Store.open({url!r}).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_second_revision_row_is_not_taken_for_current(empty_url: str) -> None:
    Store.open(empty_url).close()
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
        # Left to Alembic's own check, which refuses two heads.
        with engine.connect() as connection, pytest.raises(Exception, match="more than one head"):
            schema_status(connection)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory SQLite is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite is not supported"),
        ("oracle://scott@db/x", "unsupported database 'oracle'"),
        ("not a url", "not a database URL"),
    ],
)
def test_unsupported_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Store.open(url)


def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(UnavailableError, match="opening the store at postgresql"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_trigger_offsets_migration_keeps_existing_attempts_commands_and_lineage(
    empty_url: str,
) -> None:
    # Attempts, actions, commands and lineage written before revision 0006 (at head, then
    # taken back to 0005), upgraded again: every row is still there, with no triggers.
    from alembic import command

    import tideflow as tide
    from tideflow.domain.lineage import LineageRef
    from tideflow.metadata import DatasetService, LineageService, ProjectService, WorkflowService
    from tideflow.scheduler.service import SchedulerService
    from tideflow.store.migration import alembic_config

    def noop(ctx, inputs):
        return None

    def rows(url: str) -> dict[str, int]:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                return {
                    table: connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                    for table in (
                        "job_execution",
                        "execution_action",
                        "job_command",
                        "lineage_entry",
                    )
                }
        finally:
            engine.dispose()

    with tide.workflow("flow") as wf, tide.job("a"):
        tide.user_node(processor=noop, name="n")
    with Store.open(empty_url) as store:
        ProjectService(store).create_project("p")
        WorkflowService(store).create_snapshot("p", "flow", plan=tide.compile(wf).to_json())
        DatasetService(store).create_dataset("p", "d")
        service = SchedulerService(store)
        run = service.start_execution("p", "flow")
        (job,) = service.list_job_executions("p", run.execution_id)
        LineageService(store).record_lineage(
            "p", job.job_execution_id, outputs=[LineageRef.dataset("d", 1)]
        )
        service.close()
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0005")
        with engine.connect() as connection:
            assert schema_status(connection).current == "0005"
    finally:
        engine.dispose()
    assert rows(empty_url) == dict.fromkeys(rows(empty_url), 1)
    upgrade_database(empty_url)
    assert rows(empty_url) == dict.fromkeys(rows(empty_url), 1)
    with Store.open(empty_url) as store:
        service = SchedulerService(store)
        (job,) = service.list_job_executions("p", run.execution_id)
        (action,) = service.list_actions("p", run.execution_id)
        assert (job.trigger_offsets, action.trigger_offsets) == ((), ())
        service.close()


def test_lineage_records_migration_groups_older_entries_per_job_execution(
    empty_url: str,
) -> None:
    # Two versions' lineage written at head, taken back to 0008 (the records are forgotten),
    # upgraded again: every entry is still there, one record per job execution, so each
    # version's upstream is the whole attempt's -- and what is recorded after is per version.
    from alembic import command

    import tideflow as tide
    from tideflow.domain.lineage import LineageKind, LineageRef
    from tideflow.metadata import DatasetService, LineageService, ProjectService, WorkflowService
    from tideflow.modelcenter import ModelCenter
    from tideflow.scheduler.service import SchedulerService
    from tideflow.store.migration import alembic_config

    def noop(ctx, inputs):
        return None

    def count(url: str, table: str) -> int:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
        finally:
            engine.dispose()

    with tide.workflow("flow") as wf, tide.job("a"):
        tide.user_node(processor=noop, name="n")
    with Store.open(empty_url) as store:
        ProjectService(store).create_project("p")
        WorkflowService(store).create_snapshot("p", "flow", plan=tide.compile(wf).to_json())
        DatasetService(store).create_dataset("p", "d", stream=True)
        models = ModelCenter(store)
        models.create_model("p", "m")
        service = SchedulerService(store)
        run = service.start_execution("p", "flow")
        (job,) = service.list_job_executions("p", run.execution_id)
        lineage = LineageService(store)
        for version, (first, last) in enumerate([(0, 9), (10, 19), (20, 29)], start=1):
            models.create_version("p", "m")
            lineage.record_lineage(
                "p",
                job.job_execution_id,
                inputs=[LineageRef.dataset("d", start_offset=first, end_offset=last)],
                outputs=[LineageRef.model_version("m", version)],
            )
            if version == 2:
                (up,) = lineage.upstream("p", model="m", version=2)
                assert [(r.start_offset, r.end_offset) for r in up.inputs] == [(10, 19)]
                engine = make_engine(empty_url)
                try:
                    with engine.begin() as connection:
                        command.downgrade(alembic_config(connection), "0008")
                    with engine.connect() as connection:
                        assert schema_status(connection).current == "0008"
                finally:
                    engine.dispose()
                assert count(empty_url, "lineage_entry") == 4
                upgrade_database(empty_url)
                assert count(empty_url, "lineage_entry") == 4
                assert count(empty_url, "lineage_record") == 1
                (up,) = lineage.upstream("p", model="m", version=2)
                assert [(r.start_offset, r.end_offset) for r in up.inputs] == [(0, 9), (10, 19)]
                assert len(up.outputs) == 2
        (up,) = lineage.upstream("p", model="m", version=3)
        assert up.inputs == (LineageRef(LineageKind.DATASET, "d", 1, 20, 29),)
        assert up.outputs == (LineageRef.model_version("m", 3),)
        service.close()
    assert count(empty_url, "lineage_record") == 2
