"""``tideflow ui``: print (and with ``--open``, open) the URL of the running server's web UI.

Which server, first match wins: ``--server URL`` (or ``$TIDEFLOW_SERVER``), asked over gRPC
for its HTTP address (``GetServerInfo``: its HTTP port is not the gRPC one); else the local
server of ``$TIDEFLOW_HOME`` (its ``server.json``). A server listening on every interface
(``0.0.0.0``) reports that address; the URL then uses the host that reached its gRPC side.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import typer

from tideflow.cli.connection import ProjectOption, ServerOption, TokenOption
from tideflow.cli.output import JsonOption, OutputOption, fail, print_json, stderr, stdout
from tideflow.settings import DEFAULT_PROJECT

WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")


def ui_url(http_url: str, project: str, *, reached_host: str | None = None) -> str:
    """The UI page of ``project`` on the server whose HTTP side is ``http_url``."""
    parts = urlsplit(http_url)
    host = parts.hostname or ""
    if reached_host is not None and host in WILDCARD_HOSTS:
        port = f":{parts.port}" if parts.port else ""
        shown = f"[{reached_host}]" if ":" in reached_host else reached_host
        http_url = f"{parts.scheme}://{shown}{port}"
    return f"{http_url.rstrip('/')}/ui/{quote(project, safe='')}/workflows"


def remote_info(server: str, project: str, token: str | None) -> dict[str, Any]:
    """What the server at ``server`` says about itself (its HTTP URL among it).

    Raises:
        TideflowError: It cannot be reached, or refuses the token.
    """
    from tideflow.client.embedded import server_url
    from tideflow.client.remote.channel import RpcChannel, TlsConfig
    from tideflow.rpc.server_info import server_info_method
    from tideflow.settings import Settings

    url = server_url(server)
    tls = TlsConfig.from_ca_file(Settings.from_env().ca_file) if url.startswith("grpcs") else None
    channel = RpcChannel(url, project=project, token=token, tls=tls)
    try:
        return channel.unary(server_info_method(channel.channel), {}, mutating=False)
    finally:
        channel.close()


def _open(url: str) -> None:
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        stderr.print("no web browser found here: open the URL above yourself")
        return
    if not browser.open(url):
        stderr.print("the browser did not start: open the URL above yourself")


def ui_command(
    project: ProjectOption = DEFAULT_PROJECT,
    server: ServerOption = None,
    token: TokenOption = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Also open it in a web browser, if there is one.")
    ] = False,
    output: OutputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the URL of the running server's web UI (the project's workflows page).

    With --server, that server is asked for its HTTP address over gRPC; otherwise the local
    server of $TIDEFLOW_HOME is used. Exits with status 1 when no server runs.
    """
    from tideflow.errors import TideflowError

    if server is not None:
        from tideflow.client.embedded import server_url

        try:
            info = remote_info(server, project, token)
            reached = urlsplit(server_url(server)).hostname
        except TideflowError as e:
            fail(f"cannot ask {server} for its web UI: {e}")
        if not info.get("http_url"):
            fail(f"{server} did not say where its web UI is (a server older than this CLI?)")
    else:
        from tideflow.client.embedded import running_server
        from tideflow.settings import Settings

        home = Settings.from_env().home
        found = running_server(home)
        if found is None:
            fail(
                f"no Tideflow server is running for TIDEFLOW_HOME={home}: start one with "
                "`tideflow server start`, or pass --server grpc://HOST:PORT"
            )
        info, reached = found, None
    url = ui_url(str(info["http_url"]), project, reached_host=reached)
    if json_output:
        print_json({"url": url, "http_url": info["http_url"], "project": project})
    else:
        stdout.print(url)
    if open_browser:
        _open(url)
