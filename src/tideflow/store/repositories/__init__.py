"""Repositories: the SQL of each aggregate, run on a connection the caller's transaction owns.

Repositories never commit; services open one transaction through the store, use one or more
repositories inside it and append their events last.
"""
