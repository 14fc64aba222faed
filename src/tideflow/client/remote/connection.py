"""Build the remote service bundle for ``tide.connect("grpc://...")``."""

from __future__ import annotations

from tideflow.client.remote.channel import RpcChannel, TlsConfig
from tideflow.client.remote.model_center import RemoteModelCenter
from tideflow.client.remote.workflow import RemoteWorkflowService
from tideflow.client.services import Services


def remote_services(
    url: str, *, project: str, token: str | None = None, tls: TlsConfig | None = None
) -> Services:
    """Proxies of every service over one channel to the server at ``url``."""
    channel = RpcChannel(url, project=project, token=token, tls=tls)
    services = Services(
        projects=None,  # type: ignore[arg-type]  # filled in as each service gains its proxy
        model_center=RemoteModelCenter(channel),
        datasets=None,  # type: ignore[arg-type]  # filled in as each service gains its proxy
        artifacts=None,  # type: ignore[arg-type]  # filled in as each service gains its proxy
        metrics=None,  # type: ignore[arg-type]  # filled in as each service gains its proxy
        lineage=None,  # type: ignore[arg-type]  # filled in as each service gains its proxy
        notifications=None,  # type: ignore[arg-type]  # filled in as each service gains its proxy
        workflows=RemoteWorkflowService(channel),
    )
    services.closers.append(channel.close)
    return services
