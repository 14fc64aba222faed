"""Engines: per engine, a job generator (compile time) and an in-job runtime."""
