"""The ``flink`` executor: jobs on a Flink cluster, local (started from PyFlink) or remote."""
