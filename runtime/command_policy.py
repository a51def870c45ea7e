"""Start-command policy: which MCP server commands and environments may run.

A start command is one line of text from an API caller. It is never given to a
shell: it is split into an argument vector here, checked against an allow-list
of programs, a list of blocked tokens and each program's refused options (see
:mod:`runtime.program_options`), and searched for raw secrets; its extra
environment is checked for variables that would change what code the program
loads and for raw secrets, by name and by value (see
:mod:`runtime.secret_values`). The program must be named bare (``node``, never
``/usr/bin/node``) so that the runtime decides which binary runs, by looking it
up on its own PATH with :func:`resolve_program`.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from runtime.program_options import (
    DEFAULT_PROGRAM_OPTIONS,
    ProgramOptions,
    RefusedOptionError,
    check_npx_command,
    check_program_options,
)
from runtime.secret_values import secret_kind

SYSTEM_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH of every sandboxed process."""

DEFAULT_ALLOWED_PROGRAMS: Final = ("npx", "uvx", "pipx", "python", "python3", "node")

DEFAULT_BLOCKED_TOKENS: Final = frozenset(
    {
        "sudo",
        "docker",
        "apt",
        "apt-get",
        "apk",
        "yum",
        "dnf",
        "systemctl",
        "mkfs",
        "mount",
        "curl",
        "wget",
        "sh",
        "bash",
        "zsh",
        "eval",
    }
)

# Compared upper-cased: npm reads its npm_config_* variables case-insensitively,
# and nobody has a legitimate reason to pass ``ld_preload`` in another case.
DEFAULT_BLOCKED_ENV_KEYS: Final = frozenset(
    {
        # The sandbox builds these itself; overriding them moves the program
        # lookup, the home directory or the temporary files somewhere else.
        "PATH",
        "HOME",
        "TMPDIR",
        "TMP",
        "TEMP",
        "SHELL",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_RUNTIME_DIR",
        # Dynamic loader, C library and OpenSSL modules and tunables.
        "GLIBC_TUNABLES",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        # Node.js.
        "NODE_OPTIONS",
        "NODE_PATH",
        "NODE_EXTRA_CA_CERTS",
        "NODE_REPL_EXTERNAL_MODULE",
        "NODE_V8_COVERAGE",
        "NODE_TLS_REJECT_UNAUTHORIZED",
        # Python.
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "PYTHONINSPECT",
        "PYTHONBREAKPOINT",
        "PYTHONWARNINGS",
        "PYTHONPLATLIBDIR",
        "PYTHONEXECUTABLE",
        "PYTHONSAFEPATH",
        "PYTHONNOUSERSITE",
        "PYTHONPYCACHEPREFIX",
        # Shells that package scripts may start.
        "BASH_ENV",
        "ENV",
        "IFS",
        "PS4",
        "PROMPT_COMMAND",
        "SHELLOPTS",
        "BASHOPTS",
        "CDPATH",
        "GLOBIGNORE",
        # Git, which some servers run.
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_EDITOR",
        "GIT_PAGER",
        "GIT_PROXY_COMMAND",
        "GIT_EXTERNAL_DIFF",
        # Other runtimes a server may start.
        "PERL5LIB",
        "PERL5OPT",
        "PERL5DB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "LUA_PATH",
        "LUA_CPATH",
        "DOTNET_STARTUP_HOOKS",
    }
)

# Whole families: loader variables, exported shell functions, git
# configuration injection, and the package managers' own configuration
# (registry, cache, scripts), which the runtime sets for every server.
DEFAULT_BLOCKED_ENV_PREFIXES: Final = frozenset(
    {
        "LD_",
        "DYLD_",
        # glibc's malloc settings (MALLOC_TRACE writes a file, the others
        # are tunables that change the allocator under every program).
        "MALLOC_",
        # Lua runs LUA_INIT (and LUA_INIT_5_4 ...) as code at start-up.
        "LUA_INIT",
        "BASH_FUNC_",
        "GIT_CONFIG",
        "NPM_CONFIG_",
        "UV_",
        "PIP_",
        "PIPX_",
    }
)

FORBIDDEN_METACHARACTERS: Final = "&|;<>`$()\n\r"

# The kernel refuses an argument over 128 KiB and a command line plus
# environment over a few MiB; far smaller limits refuse a runaway request
# before it is recorded, instead of after, when the process fails to start.
MAX_COMMAND_BYTES: Final = 8192
MAX_ENV_VARIABLES: Final = 64
MAX_ENV_NAME_BYTES: Final = 256
MAX_ENV_VALUE_BYTES: Final = 16384

_SECRET_KEY = re.compile(
    r"secret|token|password|passwd|api[_-]?key|private[_-]?key|credential",
    re.IGNORECASE,
)
_SECRET_REFERENCE = re.compile(r"\$\{secret:[^}]+\}|secret://\S+")
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GO_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "'": "\\'"}


class CommandRejectedError(Exception):
    """The start command or its environment is not allowed to run.

    The message is meant for the API caller and says what to change.
    """


class ProgramNotFoundError(CommandRejectedError):
    """The allowed program is not installed where the runtime looks for it."""


@dataclass(frozen=True)
class CommandPolicy:
    """The rules a start command and its extra environment must satisfy.

    Attributes:
        allowed_programs: Bare names the first token may be.
        blocked_tokens: Names no token may have as its last path component.
        blocked_env_keys: Environment names (compared upper-cased) that may
            not be passed, because they change what code a runtime loads or
            where the sandbox keeps its files.
        blocked_env_prefixes: Upper-cased name prefixes blocked the same way.
        program_options: How each program reads its options and which it
            refuses (see :mod:`runtime.program_options`).
        system_path: The PATH sandboxed processes get; ``npx`` runs a
            program found there instead of fetching a package, so naming one
            as npx's command is refused.
    """

    allowed_programs: frozenset[str] = frozenset(DEFAULT_ALLOWED_PROGRAMS)
    blocked_tokens: frozenset[str] = DEFAULT_BLOCKED_TOKENS
    blocked_env_keys: frozenset[str] = DEFAULT_BLOCKED_ENV_KEYS
    blocked_env_prefixes: frozenset[str] = DEFAULT_BLOCKED_ENV_PREFIXES
    program_options: Mapping[str, ProgramOptions] = field(
        default_factory=lambda: dict(DEFAULT_PROGRAM_OPTIONS)
    )
    system_path: str = SYSTEM_PATH

    def validate(self, start_command: str, env: Mapping[str, str]) -> list[str]:
        """Check a start command and its environment, and split the command.

        Args:
            start_command: The command line as the caller wrote it.
            env: Extra environment variables for the server process.

        Returns:
            The argument vector; its first item is a bare allowed program name.

        Raises:
            CommandRejectedError: With the first rule the input breaks.
        """
        command = start_command.strip()
        if not command:
            raise CommandRejectedError("empty start command")
        _check_size("the start command", start_command, MAX_COMMAND_BYTES)
        # Scanned before trimming: a trailing newline is as suspect as any.
        for char in start_command:
            if char in FORBIDDEN_METACHARACTERS:
                shown = _quote_char(char)
                raise CommandRejectedError(
                    f"command contains forbidden shell metacharacter {shown}"
                )
        if "\x00" in command:
            raise CommandRejectedError("command contains a NUL character")
        for char in start_command:
            if char != "\t" and unicodedata.category(char) in _HIDDEN_CATEGORIES:
                # Other line breaks, controls and invisible format characters:
                # what a reviewer reads must be what runs.
                raise CommandRejectedError(
                    f"command contains the invisible or control character "
                    f"U+{ord(char):04X}"
                )
        argv = split_command(command)

        program = argv[0]
        base = _basename(program)
        if base not in self.allowed_programs:
            raise CommandRejectedError(
                f'program "{base}" is not allowed (permitted: {self._permitted()})'
            )
        if program != base:
            raise CommandRejectedError(
                f'program "{program}" is given as a path; name it bare as "{base}" '
                "and the runtime runs its own installed copy"
            )
        for token in argv:
            if _basename(token) in self.blocked_tokens:
                raise CommandRejectedError(
                    f'command contains blocked token "{_basename(token)}"'
                )
        try:
            started = check_program_options(argv, self.program_options)
            for outer, inner in itertools.pairwise(started):
                if _basename(outer[0]) == "npx":
                    check_npx_command(inner[0], self.system_path)
        except RefusedOptionError as exc:
            raise CommandRejectedError(str(exc)) from None
        for position, token in enumerate(argv[1:], start=1):
            if secret_kind(token) is not None:
                raise CommandRejectedError(
                    f"argument {position} of the start command appears to contain "
                    "a raw secret value; pass a secret reference in env instead"
                )

        self.validate_env(env)
        return argv

    def validate_env(self, env: Mapping[str, str]) -> None:
        """Check the extra environment of a server process.

        Args:
            env: Variable names and values as the caller gave them.

        Raises:
            CommandRejectedError: For an invalid or blocked name, a value with
                a NUL character, a raw value under a secret-looking name, or
                a value that looks like a well-known kind of secret (see
                :mod:`runtime.secret_values`) under any name.
        """
        if len(env) > MAX_ENV_VARIABLES:
            raise CommandRejectedError(
                f"env has {len(env)} variables; the limit is {MAX_ENV_VARIABLES}"
            )
        for key, value in env.items():
            _check_size("an env name", key, MAX_ENV_NAME_BYTES)
            if not _ENV_NAME.fullmatch(key):
                raise CommandRejectedError(
                    f'env "{key}" is not a valid variable name '
                    "(letters, digits and _, not starting with a digit)"
                )
            upper = key.upper()
            if upper in self.blocked_env_keys or any(
                upper.startswith(prefix) for prefix in self.blocked_env_prefixes
            ):
                raise CommandRejectedError(
                    f'env "{key}" is not allowed: it changes which code the '
                    "server's runtime loads or where the sandbox keeps its files"
                )
            _check_size(f'env "{key}"', value, MAX_ENV_VALUE_BYTES)
            if "\x00" in value:
                raise CommandRejectedError(f'env "{key}" contains a NUL character')
            if is_secret_reference(value):
                continue
            if (_SECRET_KEY.search(key) and value) or secret_kind(value) is not None:
                raise CommandRejectedError(
                    f'env "{key}" appears to contain a raw secret value; '
                    "pass a secret reference instead"
                )

    def _permitted(self) -> str:
        known = [p for p in DEFAULT_ALLOWED_PROGRAMS if p in self.allowed_programs]
        extra = sorted(self.allowed_programs.difference(DEFAULT_ALLOWED_PROGRAMS))
        return ", ".join(known + extra)


def _check_size(what: str, text: str, limit: int) -> None:
    size = len(text.encode(errors="surrogatepass"))
    if size > limit:
        raise CommandRejectedError(
            f"{what} is {size} bytes long; the limit is {limit} bytes"
        )


def split_command(command: str) -> list[str]:
    """Split a command line on spaces and tabs, honouring quotes.

    Single and double quotes group text and are dropped; there is no escape
    character; an empty quoted string still gives an (empty) token.

    Args:
        command: The command line, already free of shell metacharacters.

    Returns:
        The tokens, in order.

    Raises:
        CommandRejectedError: When a quote is not closed.
    """
    tokens: list[str] = []
    current: list[str] = []
    in_token = False
    quote = ""
    for char in command:
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "'\"":
            quote = char
            in_token = True
        elif char in " \t":
            if in_token:
                tokens.append("".join(current))
                current = []
                in_token = False
        else:
            current.append(char)
            in_token = True
    if quote:
        raise CommandRejectedError("unbalanced quote in command")
    if in_token:
        tokens.append("".join(current))
    return tokens


def is_secret_reference(value: str) -> bool:
    """Whether a whole value is ``${secret:NAME}`` or ``secret://NAME``."""
    return _SECRET_REFERENCE.fullmatch(value.strip()) is not None


def resolve_program(argv0: str, search_path: str | None = None) -> str:
    """Find the absolute path of an allowed program on the runtime's PATH.

    Args:
        argv0: A bare program name such as ``npx``.
        search_path: The directories to search, ``os.pathsep``-separated;
            the runtime process's own PATH when omitted.

    Returns:
        The absolute path of the executable.

    Raises:
        ProgramNotFoundError: When no executable of that name is found.
    """
    if search_path is None:
        search_path = os.environ.get("PATH", os.defpath)
    found = shutil.which(argv0, path=search_path)
    if found is None:
        raise ProgramNotFoundError(
            f'program "{argv0}" is not installed on this runtime'
        )
    return os.path.abspath(found)


def _basename(token: str) -> str:
    return token.rsplit("/", 1)[-1]


def _quote_char(char: str) -> str:
    """Render one character the way Go's %q verb renders a rune."""
    return "'" + _GO_ESCAPES.get(char, char) + "'"
