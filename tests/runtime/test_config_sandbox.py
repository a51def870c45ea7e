"""Tests for the sandbox settings: network and output budget."""

from __future__ import annotations

import pytest

from runtime.config import ConfigError, load_settings


def test_sandbox_settings_default_to_no_network_and_8_mib() -> None:
    """Without variables, sandboxes get no network and an 8 MiB output budget."""

    settings = load_settings({})

    assert settings.sandbox_network == "none"
    assert settings.mcp_max_output_bytes == 8 * 1024 * 1024


def test_sandbox_settings_read_network_and_budget() -> None:
    """Both settings come from their variables."""

    settings = load_settings(
        {
            "MATRIX_RUNTIME_SANDBOX_NETWORK": "host",
            "MATRIX_RUNTIME_MCP_MAX_OUTPUT_BYTES": "65536",
        }
    )

    assert settings.sandbox_network == "host"
    assert settings.mcp_max_output_bytes == 65536


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MATRIX_RUNTIME_SANDBOX_NETWORK": "bridge"},
            "MATRIX_RUNTIME_SANDBOX_NETWORK must be one of none, host, not 'bridge'",
        ),
        (
            {"MATRIX_RUNTIME_SANDBOX_NETWORK": " "},
            "MATRIX_RUNTIME_SANDBOX_NETWORK is set but empty",
        ),
        (
            {"MATRIX_RUNTIME_MCP_MAX_OUTPUT_BYTES": "1023"},
            "MATRIX_RUNTIME_MCP_MAX_OUTPUT_BYTES must be at least 1024, not 1023",
        ),
        (
            {"MATRIX_RUNTIME_MCP_MAX_OUTPUT_BYTES": "8MiB"},
            "MATRIX_RUNTIME_MCP_MAX_OUTPUT_BYTES must be a whole number, not '8MiB'",
        ),
    ],
)
def test_sandbox_settings_refuse_bad_values(
    environ: dict[str, str], message: str
) -> None:
    """A bad value stops start-up with a message naming the variable."""

    with pytest.raises(ConfigError) as caught:
        load_settings(environ)

    assert str(caught.value) == message
