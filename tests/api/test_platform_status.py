"""Readiness, capabilities and the served contract of a real runtime."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.auth_support import auth_server
from tests.api.mcp_support import runtime_server, server_env
from tests.server_process import ServerProcess

CONTRACT = Path(__file__).parents[2] / "api" / "openapi.yaml"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A runtime with limits and isolation set from its environment."""
    with runtime_server(
        tmp_path_factory.mktemp("platform") / "data",
        MATRIX_RUNTIME_MAX_TTL_SECONDS="77",
        MATRIX_RUNTIME_MAX_CONCURRENT_JOBS="3",
        MATRIX_RUNTIME_SANDBOX="process-group",
    ) as server:
        yield server


def test_ready_is_200_with_every_check_true(runtime: ServerProcess) -> None:
    """A healthy runtime is ready: every check true, only the local-dev warning."""

    response = httpx.get(f"{runtime.url}/v1/ready")

    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "checks": {
            "data_dir_writable": True,
            "log_writable": True,
            "projections_caught_up": True,
        },
        "warnings": [
            {
                "code": "local_dev_mode",
                "message": "local-dev mode: no operator token is configured, so the "
                "API is open to requests without credentials",
            }
        ],
    }


@pytest.mark.parametrize(
    ("env", "warnings"),
    [
        (
            {"MATRIX_RUNTIME_API_TOKEN": "op-token"},
            [
                {
                    "code": "local_dev_mode",
                    "message": "local-dev mode: an operator token is configured, so "
                    "requests without credentials are refused",
                }
            ],
        ),
        (
            {"MATRIX_RUNTIME_MODE": "customer-agent"},
            [
                {
                    "code": "api_token_missing",
                    "message": "no operator token is configured "
                    "(MATRIX_RUNTIME_API_TOKEN)",
                }
            ],
        ),
        (
            {
                "MATRIX_RUNTIME_MODE": "customer-agent",
                "MATRIX_RUNTIME_API_TOKEN": "op-token",
            },
            [],
        ),
    ],
)
def test_ready_warns_open_only_when_the_api_is_open(
    tmp_path: Path, env: dict[str, str], warnings: list[dict[str, str]]
) -> None:
    """With an operator token, local-dev says so and never calls the API open."""
    with auth_server(tmp_path / "data", env=env) as server:
        response = httpx.get(f"{server.url}/v1/ready")

    assert response.status_code == 200
    assert response.json()["warnings"] == warnings


def test_capabilities_list_job_types_runtimes_isolation_and_limits(
    runtime: ServerProcess,
) -> None:
    """Capabilities reflect the registered job types and the configuration."""
    path = server_env()["PATH"]
    expected_runtimes = {
        name: any(shutil.which(p, path=path) is not None for p in programs)
        for name, programs in {
            "node": ("node",),
            "python": ("python3", "python"),
            "ollama": ("ollama",),
            "vllm": ("vllm",),
            "sglang": ("sglang",),
        }.items()
    }

    response = httpx.get(f"{runtime.url}/v1/capabilities")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"capabilities", "runtimes", "isolation", "network", "limits"}
    assert {"mcp.test", "mcp.run", "tool.run"} <= set(body["capabilities"])
    assert body["capabilities"] == sorted(set(body["capabilities"]))
    assert body["runtimes"] == expected_runtimes
    assert body["runtimes"]["python"] is True
    assert body["isolation"] == "process-group"
    # Asked for none (the default), but process groups cannot take it away.
    assert body["network"] == "host"
    assert body["limits"] == {"max_ttl_seconds": 77, "max_concurrent_jobs": 3}


def test_unrestricted_network_is_a_start_up_warning(runtime: ServerProcess) -> None:
    """Network none with process-group isolation logs one WARNING at start-up."""

    logged = [line for line in runtime.lines if "sandbox network" in line]

    # Each line starts with the date and time, two fields.
    assert [line.split(" ", 2)[2] for line in logged] == [
        "WARNING runtime.server sandbox network cannot be restricted "
        "isolation=process-group requested=none in_force=host: MCP servers share "
        "the host's network, including this runtime's API and every loopback "
        "service\n"
    ]


def test_openapi_contract_is_served_as_yaml(runtime: ServerProcess) -> None:
    """GET /openapi.yaml serves the contract file byte for byte."""

    response = httpx.get(f"{runtime.url}/openapi.yaml")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/yaml"
    assert response.content == CONTRACT.read_bytes()
    assert response.content.startswith(b"openapi: ")
