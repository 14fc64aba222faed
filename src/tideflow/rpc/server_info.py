"""``GetServerInfo``: what a client cannot learn from the gRPC address alone (the HTTP side).

``tideflow ui --server grpc://host:port`` must print the URL of that server's web UI, which
listens on another port (``--http-port``). This one call answers it. It carries a small JSON
object instead of a protobuf message: it is read by the CLI only, its fields are few and only
ever added, and a JSON body needs no generated code on either side. It goes through the same
interceptor as every call (a ``reader`` token of the project is enough when tokens are
required: its name starts with ``Get``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc

SERVICE = "tideflow.v1.ServerInfoService"
METHOD = f"/{SERVICE}/GetServerInfo"

Info = dict[str, Any]


def _encode(info: Info) -> bytes:
    return json.dumps(info, sort_keys=True).encode()


def _decode(data: bytes) -> Info:
    found = json.loads(data.decode() or "{}")
    return found if isinstance(found, dict) else {}


def server_info_handler(info: Callable[[], Info]) -> grpc.GenericRpcHandler:
    """The server side: answers with ``info()`` (read at each call: ports bind late)."""

    def get(request: Info, context: grpc.ServicerContext) -> Info:
        return info()

    handler = grpc.unary_unary_rpc_method_handler(
        get, request_deserializer=_decode, response_serializer=_encode
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"GetServerInfo": handler})


def server_info_method(channel: grpc.Channel) -> Callable[..., Info]:
    """The client side: a callable ``(request, timeout=, metadata=) -> Info`` on ``channel``."""
    method: Callable[..., Info] = channel.unary_unary(
        METHOD, request_serializer=_encode, response_deserializer=_decode
    )
    return method
