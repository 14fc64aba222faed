"""The remote client: the same service interfaces as in-process, carried over gRPC.

Each ``Remote*`` class subclasses the in-process service it stands for and overrides every
public method, so the client facades (``c.models``, ``c.events`` ...) run unchanged on either,
and mypy checks that the remote signatures are the in-process ones.
"""
