"""Local-dev without a token admits only loopback clients as the local caller."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.server_process import running_server


def network_address() -> str:
    """This machine's address on its default route, which is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            # A datagram socket's connect sends nothing; it only picks a route.
            probe.connect(("192.0.2.1", 9))
        except OSError:
            pytest.skip("this machine has no network route")
        address: str = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine's only address is loopback")
    return address


def test_network_client_is_not_the_local_caller(tmp_path: Path) -> None:
    """Bound to all addresses, a client over the network gets 401, even as localhost."""
    address = network_address()

    with running_server(tmp_path / "data", host="0.0.0.0") as server:
        port = urlsplit(server.url).port
        remote = httpx.get(
            f"http://{address}:{port}/v1/jobs", headers={"Host": "localhost"}
        )
        local = httpx.get(f"http://127.0.0.1:{port}/v1/jobs")
        log_text = server.log_text()

    assert (remote.status_code, remote.json()) == (
        401,
        {"error": "authentication required", "status": 401},
    )
    assert (local.status_code, local.json()) == (200, {"jobs": []})
    assert (
        "local-dev without MATRIX_RUNTIME_API_TOKEN listens on 0.0.0.0: clients on "
        "the network get 401 on every route that needs credentials; only loopback "
        "clients are admitted as the local caller"
    ) in log_text
