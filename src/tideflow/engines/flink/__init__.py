"""The ``flink`` engine: a job's sub-graph as a PyFlink Table API program (docs/engines.md)."""
