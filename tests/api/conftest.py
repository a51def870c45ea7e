"""Fixtures that run the real server over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.mcp_support import Api
from tests.server_process import ServerProcess, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A local-dev server with an empty data directory."""
    with running_server(
        tmp_path / "data",
        {
            "MATRIX_RUNTIME_MAX_TTL_SECONDS": "120",
            "MATRIX_RUNTIME_SSE_KEEPALIVE_SECONDS": "0.5",
        },
    ) as running:
        yield running


@pytest.fixture
def api(runtime: ServerProcess) -> Iterator[Api]:
    """An HTTP client for the ``runtime`` fixture of the test's module."""
    client = Api(runtime)
    yield client
    client.close()
