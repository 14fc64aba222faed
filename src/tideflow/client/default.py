"""The process-wide default client that ``tide.submit``, ``tide.start`` and friends use.

:func:`tideflow.init` sets it (embedded or remote); tests and applications that build their own
client may set it with :func:`set_default_client`. One per process, guarded by a lock so threads
see either the old or the new client, never a half-set one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tideflow.errors import FailedPreconditionError

if TYPE_CHECKING:
    from tideflow.client.local import Client

_lock = threading.Lock()
_client: Client | None = None


def get_default_client() -> Client:
    """The default client.

    Raises:
        FailedPreconditionError: None is set: call ``tide.init(project=...)`` first.
    """
    with _lock:
        client = _client
    if client is None:
        raise FailedPreconditionError(
            "no default Tideflow client: call tide.init(project=...) first (it starts or "
            "attaches to the local server), or tide.init(server='grpc://HOST:PORT', ...)"
        )
    return client


def set_default_client(client: Client | None) -> Client | None:
    """Make ``client`` the default (``None`` clears it); returns the previous one.

    The previous client is not closed: whoever created it owns it.
    """
    global _client
    with _lock:
        previous, _client = _client, client
    return previous
