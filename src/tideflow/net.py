"""Listening TCP sockets for the HTTP servers (the server's UI and API, the predictor).

uvicorn serves sockets it is handed through asyncio, and asyncio turns Nagle's algorithm off
(``TCP_NODELAY``) on an accepted connection only when the listening socket's protocol is
``IPPROTO_TCP`` -- ``socket.socket()`` leaves it 0. With Nagle on, a keep-alive client's
every request after the first waited ~40 ms for the other side's delayed ACK: the server's
JSON API answered in ~44 ms what it computed in 3. Standard library only: every layer binds
through it.
"""

from __future__ import annotations

import socket


def tcp_listener(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port) and listening.

    ``SO_REUSEADDR`` lets a restarted server bind the port its predecessor's connections still
    hold in TIME_WAIT.

    Raises:
        OSError: The address is taken or not available.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
