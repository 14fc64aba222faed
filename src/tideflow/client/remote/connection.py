"""Build the remote service bundle for ``tide.connect("grpc://...")``."""

from __future__ import annotations

from tideflow.client.remote.blob import RemoteBlobService
from tideflow.client.remote.channel import RetryPolicy, RpcChannel, TlsConfig
from tideflow.client.remote.metadata import (
    RemoteArtifactService,
    RemoteDatasetService,
    RemoteLineageService,
    RemoteMetricService,
    RemoteProjectService,
)
from tideflow.client.remote.model_center import RemoteModelCenter
from tideflow.client.remote.notification import RemoteNotificationService
from tideflow.client.remote.scheduler import RemoteSchedulerService
from tideflow.client.remote.workflow import RemoteWorkflowService
from tideflow.client.services import Services


def remote_services(
    url: str,
    *,
    project: str,
    token: str | None = None,
    tls: TlsConfig | None = None,
    retry: RetryPolicy | None = None,
    connect_timeout: float | None = None,
) -> Services:
    """Proxies of every service over one channel to the server at ``url``.

    With ``connect_timeout``, the channel must connect within that many seconds first
    (:meth:`RpcChannel.wait_ready`), else :class:`~tideflow.errors.UnavailableError`.
    """
    channel = RpcChannel(url, project=project, token=token, tls=tls, retry=retry)
    if connect_timeout is not None:
        try:
            channel.wait_ready(connect_timeout)
        except BaseException:
            channel.close()
            raise
    notifications = RemoteNotificationService(channel)
    services = Services(
        projects=RemoteProjectService(channel),
        model_center=RemoteModelCenter(channel),
        datasets=RemoteDatasetService(channel),
        artifacts=RemoteArtifactService(channel),
        metrics=RemoteMetricService(channel),
        lineage=RemoteLineageService(channel),
        notifications=notifications,
        workflows=RemoteWorkflowService(channel),
        scheduler=RemoteSchedulerService(channel),
        blobs=RemoteBlobService(channel),
    )
    services.closers.append(channel.close)
    services.closers.append(notifications.close)  # listeners end before the channel closes
    return services
