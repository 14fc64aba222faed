"""Migration 0011 (workflow schedules): up, down and up again on every backend."""

from __future__ import annotations

from sqlalchemy import inspect

from tideflow.store import Store
from tideflow.store.engine import make_engine
from tideflow.store.migration import schema_diff, upgrade_database


def test_schedule_migration_goes_down_and_up_again(empty_url: str) -> None:
    from alembic import command

    from tideflow.store.migration import alembic_config

    def tables() -> set[str]:
        engine = make_engine(empty_url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    Store.open(empty_url).close()
    assert {"schedule_timer", "schedule_tick"} <= tables()
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(connection)
            command.downgrade(config, "0010")
    finally:
        engine.dispose()
    assert not {"schedule_timer", "schedule_tick"} & tables()
    upgrade_database(empty_url)
    with Store.open(empty_url) as store:
        assert schema_diff(store.engine) == []
    assert {"schedule_timer", "schedule_tick"} <= tables()
