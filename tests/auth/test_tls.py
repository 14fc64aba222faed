"""gRPC over TLS: ``server start --tls-cert/--tls-key``, clients with ``ca=`` or $TIDEFLOW_CA_FILE."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tideflow.client import connect
from tideflow.errors import UnavailableError
from tideflow.testing import TideflowTestServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_server(
    certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TideflowTestServer]:
    cert, key = certificate
    server = TideflowTestServer(
        home=tmp_path_factory.mktemp("home"),
        args=["--tls-cert", str(cert), "--tls-key", str(key), "--auth", "required"],
    )
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def token(tls_server: TideflowTestServer) -> str:
    from tests.auth.conftest import issuer

    return issuer(tls_server.db_url)("secure", "writer")


def test_the_server_announces_a_grpcs_url(tls_server: TideflowTestServer) -> None:
    assert tls_server.url.startswith("grpcs://127.0.0.1:")


def test_round_trip_with_the_ca_given(
    tls_server: TideflowTestServer, certificate: tuple[Path, Path], token: str
) -> None:
    with connect(tls_server.url, project="secure", token=token, ca=certificate[0]) as client:
        client.models.create("tls_model")
        assert client.models.get("tls_model").name == "tls_model"


def test_round_trip_with_the_ca_from_the_environment(
    tls_server: TideflowTestServer,
    certificate: tuple[Path, Path],
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDEFLOW_CA_FILE", str(certificate[0]))
    with connect(tls_server.url, project="secure", token=token) as client:
        assert client.models.list() is not None


def test_an_untrusted_certificate_is_refused(
    tls_server: TideflowTestServer, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDEFLOW_CA_FILE", raising=False)
    with (  # the system's roots do not trust a self-signed certificate
        pytest.raises(UnavailableError, match="unavailable"),
        connect(tls_server.url, project="secure", token=token) as client,
    ):
        client.models.list()


def test_a_plaintext_client_cannot_talk_to_a_tls_server(
    tls_server: TideflowTestServer, token: str
) -> None:
    plain = tls_server.url.replace("grpcs://", "grpc://")
    with (
        pytest.raises(UnavailableError),
        connect(plain, project="secure", token=token) as client,
    ):
        client.models.list()
