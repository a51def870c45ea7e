"""Tests for refused program options and raw secret values in start commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.command_policy import CommandPolicy, CommandRejectedError
from runtime.program_options import check_program_options
from runtime.secret_values import secret_kind

POLICY = CommandPolicy()
INLINE = "it runs a shell or inline code"
ARGUMENT_SECRET = (
    "argument {n} of the start command appears to contain a raw secret value; "
    "pass a secret reference in env instead"
)
ENV_SECRET = (
    'env "{key}" appears to contain a raw secret value; pass a secret reference instead'
)
# Realistic shapes, built from parts so no complete token sits in the source.
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 4
SECRETS = {
    "github": GITHUB_TOKEN,
    "github-oauth": "gho_" + "Z9y8X7w6V5" * 4,
    "github-fine-grained": "github_pat_" + "11ABCDEFG0" * 5 + "_xyz",
    "slack": "xoxb-" + "1234567890-0987654321-abcdefABCDEF",
    "aws": "AKIA" + "IOSFODNN7EXAMPLE",
    "aws-session": "ASIA" + "Y34FZKBOKMUTVV7A",
    "pem": "-----BEGIN " + "RSA PRIVATE KEY-----",
    "pem-openssh": "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
    "jwt": "eyJhbGciOiJIUzI1NiJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    + ".dozjgNryP4J3jVmNHl0w5N",
    "openai": "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2,
    "anthropic": "sk-ant-api03-" + "q1W2e3R4t5Y6u7I8o9P0" * 4,
    "google": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
}


def rejection(command: str, env: dict[str, str] | None = None) -> str:
    """The policy's message for a refused command."""
    with pytest.raises(CommandRejectedError) as caught:
        POLICY.validate(command, env or {})
    return str(caught.value)


@pytest.mark.parametrize(
    ("command", "option", "program"),
    [
        ("npx -c id", "-c", "npx"),
        ("npx --call id", "--call", "npx"),
        ("npx --call=id", "--call", "npx"),
        ("npx -yc id", "-c", "npx"),
        ("npx -y -c id", "-c", "npx"),
        ("npx --cal id", "--cal", "npx"),
        ("npx --shell /bin/dash pkg", "--shell", "npx"),
        ("npx --shell=/bin/dash pkg", "--shell", "npx"),
        ("npx --script-shell=/bin/dash -y pkg", "--script-shell", "npx"),
        ("npx --script-sh /bin/dash pkg", "--script-sh", "npx"),
        ("npx --node-options=--require=./x.js pkg", "--node-options", "npx"),
        ("npx --package pkg -c id", "-c", "npx"),
        ("npx --registry https://r.example -c id", "-c", "npx"),
        ("npx --unknown value -c id", "-c", "npx"),
        ("node --eval 1", "--eval", "node"),
        ("node --eval=1", "--eval", "node"),
        ("node -e 1", "-e", "node"),
        ("node -p 1", "-p", "node"),
        ("node --print 1", "--print", "node"),
        ("node -pe 1", "-p", "node"),
        ("node -r ./hook.js server.js", "-r", "node"),
        ("node --require ./hook.js server.js", "--require", "node"),
        ("node --import=data:text/javascript,1 server.js", "--import", "node"),
        ("node --loader ./l.mjs server.js", "--loader", "node"),
        (
            "node --experimental-loader=./l.mjs server.js",
            "--experimental-loader",
            "node",
        ),
        ("node --inspect server.js", "--inspect", "node"),
        ("node --inspect-brk=0.0.0.0:9229 server.js", "--inspect-brk", "node"),
        ("node --inspect-port 9229 server.js", "--inspect-port", "node"),
        ("node --run start", "--run", "node"),
        ("node --title t -e 1", "-e", "node"),
        ("node -C dev -e 1", "-e", "node"),
        ("python3 -c 1", "-c", "python3"),
        ("python -c 1", "-c", "python"),
        ("python3 -Ic 1", "-c", "python3"),
        ("python3 -I -c 1", "-c", "python3"),
        ("python3 -W ignore -c 1", "-c", "python3"),
        ("python3 -c1", "-c", "python3"),
        ("uvx python -c 1", "-c", "python"),
        ("uvx python@3.12 -c 1", "-c", "python@3.12"),
        ("uvx --from some-pkg python3 -c 1", "-c", "python3"),
        ("uvx -p 3.12 --with httpx python -c 1", "-c", "python"),
        ("uvx --from=x node -e 1", "-e", "node"),
        ("pipx run python -c 1", "-c", "python"),
        ("pipx run --spec some-pkg python3 -c 1", "-c", "python3"),
        ("pipx --verbose run python -c 1", "-c", "python"),
        ("npx node -e 1", "-e", "node"),
        ("npx -y node@20 --eval 1", "--eval", "node@20"),
        ("npx python3 -c 1", "-c", "python3"),
        ("npx -- python3 -c 1", "-c", "python3"),
        ("npx -y npx -c id", "-c", "npx"),
    ],
)
def test_policy_refuses_inline_code_options(
    command: str, option: str, program: str
) -> None:
    """Options running a shell or inline code are refused in every spelling."""

    text = rejection(command)

    assert text == f'option "{option}" of {program} is not allowed: {INLINE}'


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "npx --userconfig ./npmrc pkg",
            'option "--userconfig" of npx is not allowed: '
            "it loads npm configuration from a file",
        ),
        (
            "npx --globalconfig=./npmrc pkg",
            'option "--globalconfig" of npx is not allowed: '
            "it loads npm configuration from a file",
        ),
        (
            "node --env-file=.env server.js",
            'option "--env-file" of node is not allowed: '
            "it loads environment variables from a file",
        ),
        (
            "uvx --env-file .env mcp-server-time",
            'option "--env-file" of uvx is not allowed: '
            "it loads environment variables from a file",
        ),
    ],
)
def test_policy_refuses_options_loading_settings_from_files(
    command: str, message: str
) -> None:
    """Options that load environment or npm settings from a file are refused."""

    text = rejection(command)

    assert text == message


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (
            "npx -y @modelcontextprotocol/server-filesystem -c config.json",
            [
                "npx",
                "-y",
                "@modelcontextprotocol/server-filesystem",
                "-c",
                "config.json",
            ],
        ),
        (
            "npx --yes some-mcp-server --eval x",
            ["npx", "--yes", "some-mcp-server", "--eval", "x"],
        ),
        ("npx --cache ./c -y pkg -e", ["npx", "--cache", "./c", "-y", "pkg", "-e"]),
        (
            "node server.js -e production -p 8080",
            ["node", "server.js", "-e", "production", "-p", "8080"],
        ),
        (
            "node --trace-warnings -C dev server.js",
            ["node", "--trace-warnings", "-C", "dev", "server.js"],
        ),
        ("node -- server.js -c", ["node", "--", "server.js", "-c"]),
        (
            "python3 -m mcp_server_time -c x",
            ["python3", "-m", "mcp_server_time", "-c", "x"],
        ),
        ("python3 -mmcp_server_time -c", ["python3", "-mmcp_server_time", "-c"]),
        ("python3 -Wc server.py", ["python3", "-Wc", "server.py"]),
        (
            "python3 -X dev server.py -c x",
            ["python3", "-X", "dev", "server.py", "-c", "x"],
        ),
        ("python3 -u -B server.py", ["python3", "-u", "-B", "server.py"]),
        (
            "uvx mcp-server-time --local-timezone UTC",
            ["uvx", "mcp-server-time", "--local-timezone", "UTC"],
        ),
        (
            "uvx -p3.12 some-server -c cfg",
            ["uvx", "-p3.12", "some-server", "-c", "cfg"],
        ),
        (
            "uvx --from some-pkg some-server -e x",
            ["uvx", "--from", "some-pkg", "some-server", "-e", "x"],
        ),
        ("pipx run mcp-thing -c x", ["pipx", "run", "mcp-thing", "-c", "x"]),
    ],
)
def test_policy_lets_servers_have_their_own_options(
    command: str, argv: list[str]
) -> None:
    """Options after the script, module or package belong to the server."""

    result = POLICY.validate(command, {})

    assert result == argv


def test_program_options_lists_the_commands_started() -> None:
    """npx, uvx and pipx run start a command that is read by its own rules."""

    started = check_program_options(
        ["npx", "-y", "--package", "x", "uvx", "-p", "3.12", "python", "s.py", "-c"]
    )

    assert started == [
        ["npx", "-y", "--package", "x", "uvx", "-p", "3.12", "python", "s.py", "-c"],
        ["uvx", "-p", "3.12", "python", "s.py", "-c"],
        ["python", "s.py", "-c"],
    ]


def test_policy_refuses_commands_nested_too_deeply() -> None:
    """A chain of launchers deeper than the rules follow is refused outright."""

    text = rejection("npx -y uvx uvx uvx uvx uvx some-server")

    assert text == 'command "uvx" is nested too deeply in the start command'


def test_policy_refuses_npx_running_a_system_program(tmp_path: Path) -> None:
    """A bare npx command found on the sandbox's PATH is a program, not a package."""
    program = tmp_path / "perl"
    program.write_text("#!/bin/true\n")
    program.chmod(0o755)
    policy = CommandPolicy(system_path=str(tmp_path))

    with pytest.raises(CommandRejectedError) as caught:
        policy.validate("npx -y perl -le print", {})

    assert str(caught.value) == (
        f'npx would run the installed program "{program}", not an npm package; '
        "start an allowed program directly instead"
    )


def test_policy_lets_npx_run_a_globally_installed_package(tmp_path: Path) -> None:
    """A bin on PATH that links into node_modules is an npm package's."""
    target = tmp_path / "lib" / "node_modules" / "some-server" / "index.js"
    target.parent.mkdir(parents=True)
    target.write_text("")
    target.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "some-server").symlink_to(target)
    policy = CommandPolicy(system_path=str(bin_dir))

    argv = policy.validate("npx some-server --stdio", {})

    assert argv == ["npx", "some-server", "--stdio"]


@pytest.mark.parametrize("manager", ["npm", "npm@10", "yarn", "pnpm", "corepack"])
def test_policy_refuses_npx_running_a_package_manager(manager: str) -> None:
    """npx may not start a package manager, from PATH or from the registry."""

    text = rejection(f"npx -y {manager} exec -c id")

    assert text == (
        f'npx may not run the package manager "{manager}": it runs scripts and '
        "shells; name the server package instead"
    )


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_policy_refuses_secret_values_in_env(kind: str) -> None:
    """A well-known secret is refused in env under any name, even inside text."""

    text = rejection("node s.js", {"SETTING": f"Bearer {SECRETS[kind]}"})

    assert text == ENV_SECRET.format(key="SETTING")


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_policy_refuses_secret_values_in_arguments(kind: str) -> None:
    """A well-known secret in an argument is refused, naming its position."""

    text = rejection(f'npx -y some-server "--token={SECRETS[kind]}"')

    assert text == ARGUMENT_SECRET.format(n=3)


def test_policy_names_the_first_argument_with_a_secret() -> None:
    """Arguments are counted from 1 after the program."""

    text = rejection(f"node {GITHUB_TOKEN} s.js")

    assert text == ARGUMENT_SECRET.format(n=1)


@pytest.mark.parametrize(
    "value",
    [
        "ghp_short",
        "sk-short-key",
        "disk-0123456789abcdefghijklmnopqrstuvwxyz",
        "AKIAshort",
        "XAKIAIOSFODNN7EXAMPLEX",
        "eyJhbGciOiJIUzI1NiJ9",
        "-----BEGIN PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----",
        "xoxz-1234567890-abc",
        "AIzaShort",
        "https://example.com/ghp_path",
        "Europe/Paris",
    ],
)
def test_policy_accepts_values_that_only_resemble_secrets(value: str) -> None:
    """Near misses of the secret formats pass, in env and in arguments."""

    argv = POLICY.validate(f'node s.js "{value}"', {"SETTING": value})

    assert argv == ["node", "s.js", value]


def test_policy_accepts_a_reference_under_any_name() -> None:
    """A secret reference is fine wherever it is passed."""

    argv = POLICY.validate("node s.js", {"SETTING": "${secret:github}"})

    assert argv == ["node", "s.js"]


@given(
    prefix=st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
    body=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        min_size=36,
        max_size=60,
    ),
    before=st.sampled_from(["", "token=", "https://x:", "Bearer "]),
    after=st.sampled_from(["", "@github.com", " trailing", "/path"]),
)
def test_secret_kind_finds_github_tokens_anywhere(
    prefix: str, body: str, before: str, after: str
) -> None:
    """Every GitHub token shape is found wherever it sits in a value."""

    kind = secret_kind(before + prefix + body + after)

    assert kind == "github"
