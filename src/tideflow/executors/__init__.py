"""Executors: where job attempts run (local processes; Ray, Flink and Spark later).

:mod:`tideflow.executors.base` is the plugin boundary, :mod:`tideflow.executors.loop` feeds an
executor from the scheduler's outbox, :mod:`tideflow.executors.local` runs jobs as processes
on this host.
"""
