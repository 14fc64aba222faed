"""One gRPC channel to a Tideflow server: metadata, deadlines, retries, errors.

Every call carries the project and the token. Mutating calls also carry a request id generated
once per *logical* call and reused by its retries, so the server applies a retried create,
deploy or submit once (it returns the stored response). Calls that fail with UNAVAILABLE are
retried with exponential backoff and jitter; every other failure becomes the Tideflow error
the server raised.

Every call has a deadline: unary calls :data:`DEFAULT_TIMEOUT` (per attempt), package
transfers their own, and ``Listen`` streams one per stream that the listener renews by
reopening (see :mod:`tideflow.client.remote.notification`). Messages are limited to
:data:`MAX_MESSAGE_BYTES` each way, as on the server; a message over the limit fails with an
:class:`~tideflow.errors.InvalidArgumentError` that says so, not with a transport error.
"""

from __future__ import annotations

import random
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from tideflow.errors import InvalidArgumentError, TideflowError, UnavailableError
from tideflow.rpc.call import ATTEMPT_KEY, AUTHORIZATION_KEY, PROJECT_KEY, REQUEST_ID_KEY
from tideflow.rpc.status import rebuild_error

R = TypeVar("R")

DEFAULT_TIMEOUT = 30.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How UNAVAILABLE calls are retried: ``attempts`` in all, backoff doubling to a cap.

    The pauses are at least half the backoff ("equal jitter"), so the retries of one call span
    at least ~2.5 s by default -- longer than the channel's own reconnect backoff (at most 1 s),
    so a call made just after a server restart outlasts the channel's wait instead of running
    out of attempts while the channel is still backing off.
    """

    attempts: int = 8
    initial_backoff: float = 0.05
    max_backoff: float = 2.0

    @classmethod
    def lasting(cls, seconds: float) -> RetryPolicy:
        """A policy whose retries of one call span at least ``seconds`` (pauses capped at 2 s).

        For callers that must ride over a server restart rather than fail fast: a job's calls
        back to its server (a restart under load takes well over the default ~2.5 s).
        """
        if seconds <= 0:
            raise InvalidArgumentError(f"retry time must be positive, got {seconds!r}")
        policy = cls()
        floor, backoff, attempts = 0.0, policy.initial_backoff, 1
        while floor < seconds:  # the pauses are at least half the backoff
            floor += backoff / 2
            backoff = min(backoff * 2, policy.max_backoff)
            attempts += 1
        return cls(attempts=attempts)

    def delays(self) -> Iterator[float]:
        """The pause before each retry: half the backoff plus up to half again at random."""
        backoff = self.initial_backoff
        for _ in range(self.attempts - 1):
            yield backoff / 2 + random.uniform(0, backoff / 2)
            backoff = min(backoff * 2, self.max_backoff)


@dataclass(frozen=True)
class TlsConfig:
    """TLS for the channel: the CA that signed the server's certificate (PEM bytes).

    ``None`` trusts the system's root certificates (a server with a publicly signed one).
    """

    root_certificates: bytes | None = None

    @classmethod
    def from_ca_file(cls, path: str | Path | None) -> TlsConfig:
        """Trust the CA certificate(s) in the PEM file ``path`` (system roots if ``None``).

        Raises:
            InvalidArgumentError: The file cannot be read.
        """
        if path is None:
            return cls()
        try:
            return cls(root_certificates=Path(path).expanduser().read_bytes())
        except OSError as e:
            raise InvalidArgumentError(
                f"cannot read the CA file {str(path)!r}: {e.strerror}", field="ca"
            ) from e


MAX_ADDRESSES = 16
"""Most members one server URL may list (``grpc://a:50051,b:50051,...``)."""


def parse_addresses(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` of each member ``grpc://host:port[,host:port...]`` names.

    Raises:
        InvalidArgumentError: Not a grpc:// URL, an address without a host or a port, a port
            out of range, a repeated address or more than :data:`MAX_ADDRESSES`.
    """
    if not url.startswith(("grpc://", "grpcs://")):
        raise InvalidArgumentError(
            f"not a server URL: {url!r}; use grpc://HOST:PORT (or grpc://HOST:PORT,HOST:PORT "
            "for the members of a cluster)",
            field="server",
        )
    listed = url.split("://", 1)[1].rstrip("/").split(",")
    if len(listed) > MAX_ADDRESSES:
        raise InvalidArgumentError(
            f"server URL lists {len(listed)} addresses; at most {MAX_ADDRESSES}", field="server"
        )
    addresses: list[tuple[str, int]] = []
    for text in listed:
        host, _, port = text.strip().rpartition(":")
        host = host.removeprefix("[").removesuffix("]")  # [::1]:50051
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgumentError(
                f"server URL {url!r}: {text!r} needs a host and a port (1-65535), e.g. "
                "grpc://127.0.0.1:50051",
                field="server",
            )
        if (host, int(port)) in addresses:
            raise InvalidArgumentError(f"server URL {url!r} lists {text!r} twice", field="server")
        addresses.append((host, int(port)))
    return addresses


def parse_target(url: str) -> str:
    """The gRPC target of a server URL: ``host:port``, or one channel over several members.

    Several members (``grpc://a:50051,b:50051``) become one ``ipv4:`` / ``ipv6:`` target of
    their addresses (names resolved now): gRPC's ``pick_first`` policy keeps to one member and
    moves to the next when it goes away, so a call that failed with UNAVAILABLE is retried on
    another member by the channel's ordinary retries.

    Raises:
        InvalidArgumentError: A bad URL (see :func:`parse_addresses`), a name that does not
            resolve, or members of both IPv4 and IPv6.
    """
    addresses = parse_addresses(url)
    if len(addresses) == 1:
        host, port = addresses[0]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    families: set[int] = set()
    resolved: list[str] = []
    for host, port in addresses:
        try:
            family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except (OSError, UnicodeError) as e:
            raise InvalidArgumentError(
                f"server URL {url!r}: {host!r} does not resolve ({e})", field="server"
            ) from None
        families.add(family)
        ip = str(sockaddr[0])
        resolved.append(f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}")
    if len(families) > 1:
        raise InvalidArgumentError(
            f"server URL {url!r} mixes IPv4 and IPv6 members; list one family", field="server"
        )
    scheme = "ipv6" if families == {socket.AF_INET6} else "ipv4"
    return f"{scheme}:{','.join(resolved)}"


class RpcChannel:
    """A channel bound to one project and token."""

    def __init__(
        self,
        url: str,
        *,
        project: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        tls: TlsConfig | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.url = url
        self.target = parse_target(url)
        self.project = project
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        options: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Reconnect soon after a server restart: gRPC's default backoff grows to minutes,
            # and calls fail fast (UNAVAILABLE) while it waits, outlasting the retry budget.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # gRPC's own retry machinery: this channel retries itself (unary() below, request
            # ids making mutations safe to repeat), and the retry filter cost every call ~4 %
            # (interleaved, 1 client, SQLite server). Calls it would have retried
            # transparently (refused before the server saw them) come back UNAVAILABLE and
            # are retried here.
            ("grpc.enable_retries", 0),
        ]
        if tls is not None or url.startswith("grpcs://"):
            members = parse_addresses(url)
            if len(members) > 1:  # the target holds addresses: check certificates by name
                options.append(("grpc.ssl_target_name_override", members[0][0]))
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls.root_certificates if tls else None
            )
            self.channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(self.target, options=options)
        self._metadata: tuple[tuple[str, str], ...] = ((PROJECT_KEY, project),)
        if token:
            self._metadata += ((AUTHORIZATION_KEY, f"Bearer {token}"),)

    def wait_ready(self, timeout: float) -> None:
        """Connect once, waiting at most ``timeout`` seconds for the server to answer.

        For callers that would rather fail fast with a hint than ride out a restart (the CLI):
        the calls' own retries span several seconds before they give up.

        Raises:
            UnavailableError: No server answered in time (the message says what to check).
        """
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise UnavailableError(
                f"no Tideflow server answers at {self.url} (waited {timeout:g} s): is it "
                "running? Start one with `tideflow server start`, or point --server / "
                "$TIDEFLOW_SERVER at one that runs (the wait is $TIDEFLOW_CONNECT_TIMEOUT)"
            ) from None

    def metadata(self, *, mutating: bool) -> tuple[tuple[str, str], ...]:
        """The metadata of one logical call (a fresh request id when it mutates)."""
        if mutating:
            return (*self._metadata, (REQUEST_ID_KEY, new_request_id()))
        return self._metadata

    def unary(
        self,
        method: Callable[..., R],
        request: Any,
        *,
        mutating: bool,
        timeout: float | None = None,
    ) -> R:
        """Call a unary RPC with deadline, retries and error translation."""
        metadata = self.metadata(mutating=mutating)
        delays = self.retry.delays()
        attempt = 1
        while True:
            try:
                return method(request, timeout=timeout or self.timeout, metadata=metadata)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    delay = next(delays, None)
                    if delay is not None:
                        time.sleep(delay)
                        # A retry says so: the server then looks the request id up (a first
                        # try cannot have been seen before, so it skips that read).
                        attempt += 1
                        metadata = (*_without(metadata, ATTEMPT_KEY), (ATTEMPT_KEY, str(attempt)))
                        continue
                raise translate(error) from None

    def close(self) -> None:
        """Close the channel (open streams end)."""
        self.channel.close()


def new_request_id() -> str:
    """A fresh request id that sorts by time: Unix milliseconds (12 hex digits), 80 random bits.

    The server keeps every id in a B-tree (the primary key of its request log). Ids that come
    in order go in at its right edge; random ones (``uuid4``) landed on any page of it, a page
    split and often a page to read each: the marker insert of a ``create_model_version`` cost
    62 us instead of 51 in a 20,000-row log (in-process, SQLite), and more as the log grows.
    The random part keeps ids of one millisecond (or of two clients) apart.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def _without(metadata: tuple[tuple[str, str], ...], key: str) -> tuple[tuple[str, str], ...]:
    return tuple(pair for pair in metadata if pair[0] != key)


def translate(error: grpc.RpcError) -> TideflowError:
    """The Tideflow error for a failed call."""
    code = error.code()
    details = error.details() or code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        return UnavailableError(f"Tideflow server unavailable: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "message larger than max" in details:
        # gRPC's own size check, on this side or the server's: say what to do about it.
        return InvalidArgumentError(
            f"a gRPC message exceeds the size limit ({details}; the limit is "
            f"{MAX_MESSAGE_BYTES // (1024 * 1024)} MiB by default): send less per call -- "
            "smaller batches or pages, large payloads in the blob store",
            field="message",
        )
    try:
        trailing = error.trailing_metadata()
    except Exception:  # some failures (cancelled before start) carry no trailers
        trailing = None
    return rebuild_error(code, details, trailing)
