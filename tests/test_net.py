"""Listening sockets whose accepted connections have Nagle's algorithm off under asyncio."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tideflow.net import tcp_listener


def _accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY of the connection an asyncio server (as uvicorn runs one) accepts."""

    async def run() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(accepted, 30)
        finally:
            writer.close()
            server.close()

    return asyncio.run(run())


def test_connections_accepted_from_a_tcp_listener_have_nagle_off() -> None:
    assert _accepted_nodelay(tcp_listener("127.0.0.1", 0)) != 0


def test_a_plain_socket_would_leave_nagle_on() -> None:
    """Why tcp_listener exists: asyncio looks at the listening socket's protocol number."""
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    assert _accepted_nodelay(plain) == 0


def test_a_taken_port_raises_and_closes_the_socket() -> None:
    with tcp_listener("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            tcp_listener("127.0.0.1", port)
