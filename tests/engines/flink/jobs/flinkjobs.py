"""Flink processors for the tests: a module of the code package, so they pickle by reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tideflow as tide


class Numbers(tide.Processor):
    """A bounded table of ``n`` rows (n, n squared), built with the Table API."""

    def __init__(self, n: int) -> None:
        self.n = n

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        print(f"flink numbers processor builds {self.n} rows", flush=True)
        ctx.log_metric("rows_built", self.n)  # at build time, in Flink's client
        return ctx.t_env.from_elements([(i, i * i) for i in range(self.n)], ["n", "sq"])


class AddColumn(tide.Processor):
    """Table API transform: adds ``total = n + sq``."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        from pyflink.table.expressions import col

        return inputs[0].select(col("n"), col("sq"), (col("n") + col("sq")).alias("total"))


class WriteCsv(tide.Processor):
    """Declares a filesystem CSV sink at ``path`` and inserts the input into it."""

    def __init__(self, path: str, columns: str) -> None:
        self.path = path
        self.columns = columns

    def process(self, ctx: Any, inputs: Sequence[Any]) -> None:
        name = f"sink_{ctx.node}"
        ctx.t_env.execute_sql(
            f"CREATE TEMPORARY TABLE {name} ({self.columns}) WITH ("
            f"'connector' = 'filesystem', 'path' = '{self.path}', 'format' = 'csv')"
        )
        ctx.insert(inputs[0], name)


class Sql(tide.Processor):
    """Gives SQL text; ``{input}`` is replaced by the upstream node's view name."""

    def __init__(self, statements: str, upstream: str = "") -> None:
        self.statements = statements
        self.upstream = upstream

    def process(self, ctx: Any, inputs: Sequence[Any]) -> str:
        return self.statements.replace("{input}", self.upstream)


class Broken(tide.Processor):
    """Fails while the program is built."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> Any:
        raise ValueError("flink job broken on purpose")


def stream_sql(path: str, rows_per_second: int = 50) -> str:
    """An unbounded datagen source into a JSON Lines filesystem sink at ``path``."""
    return f"""
        CREATE TEMPORARY TABLE gen (id BIGINT, v DOUBLE) WITH (
          'connector' = 'datagen', 'rows-per-second' = '{rows_per_second}');
        CREATE TEMPORARY TABLE out_json (id BIGINT, v DOUBLE) WITH (
          'connector' = 'filesystem', 'path' = '{path}', 'format' = 'json',
          'sink.rolling-policy.rollover-interval' = '1 s',
          'sink.rolling-policy.check-interval' = '1 s');
        INSERT INTO out_json SELECT id, v FROM gen
    """


class ContractFinish(tide.Processor):
    """The contract suite's ``finish`` job: a few rows into a blackhole sink, and a log line."""

    def process(self, ctx: Any, inputs: Sequence[Any]) -> None:
        print("flink contract job ran", flush=True)
        ctx.t_env.execute_sql(
            "CREATE TEMPORARY TABLE contract_sink (n BIGINT) WITH ('connector' = 'blackhole')"
        )
        ctx.insert(ctx.t_env.from_elements([(1,), (2,), (3,)], ["n"]), "contract_sink")


CONTRACT_STREAM = """
    CREATE TEMPORARY TABLE contract_gen (n BIGINT) WITH (
      'connector' = 'datagen', 'rows-per-second' = '5');
    CREATE TEMPORARY TABLE contract_hole (n BIGINT) WITH ('connector' = 'blackhole');
    INSERT INTO contract_hole SELECT n FROM contract_gen
"""
