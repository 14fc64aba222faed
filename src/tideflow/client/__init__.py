"""The client API: the same object whether the services run in this process or on a server.

:func:`connect` with a SQL URL opens the store and runs the services in-process (no scheduler);
``grpc://`` URLs (a remote server) arrive with the RPC layer.
"""

from tideflow.client.local import Client, connect

__all__ = ["Client", "connect"]
