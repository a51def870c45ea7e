"""Options of the allowed programs that a start command may not use.

Each allowed program has options that run a shell or code given inline on
the command line (``npx -c``, ``node -e``, ``python3 -c``) or that load
settings which do the same from a file. Refusing them keeps a start command
what it claims to be: a program plus arguments, never a script.

A command line is read the way the program itself reads it: long options as
``--name value`` or ``--name=value``, short options alone or combined
(``-pe``, ``-yc``), and only up to the first positional argument, because
what follows it belongs to the script or package being run (a server's own
``-c config.json`` is fine). npm expands unambiguous prefixes of long
options (``--cal`` is ``--call``), so for ``npx`` every prefix of a refused
name is refused too. ``npx``, ``uvx`` and ``pipx run`` start another
command; when that command is itself one of these programs (``uvx python
-c``), its options are read by its own rules. ``npx`` also runs programs
found on the PATH (``npx perl -e``) and package managers that run shells
(``npx npm exec -c``); :func:`check_npx_command` refuses both.

This is a check on what a start command says, not a boundary: a package that
``npx`` or ``uvx`` fetches is arbitrary code and may run a shell from its own
arguments. The sandbox is what confines it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

INLINE_CODE: Final = "it runs a shell or inline code"
ENV_FILE: Final = "it loads environment variables from a file"
CONFIG_FILE: Final = "it loads npm configuration from a file"

# Package managers run scripts and shells by design (``npm exec -c``,
# ``npm explore``); npx may not start one, from PATH or from the registry.
PACKAGE_MANAGERS: Final = frozenset({"npm", "npx", "yarn", "pnpm", "corepack"})

# How deep "npx node ..." style nesting is followed; a longer chain is
# refused outright instead of being read.
MAX_NESTING: Final = 4

_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)*)?")
_VERSION_SUFFIX = re.compile(r"@[^/]*$")


class RefusedOptionError(Exception):
    """A start command uses an option its program may not be given."""


@dataclass(frozen=True)
class ProgramOptions:
    """How one program reads its command line, and what it may not be given.

    Attributes:
        refused: Long option names (without dashes) mapped to why each is
            refused.
        refused_prefixes: Long option name prefixes refused as a family
            (``inspect`` covers ``--inspect-brk``), with the reason.
        refused_short: Short option letters mapped to why each is refused.
        value_long: Long options that take the next token as their value
            when not written with ``=``.
        value_short: Short option letters that take a value.
        attached_short_values: Whether a short option's value may follow it
            in the same token (``-Wignore``); the rest of the token is then
            its value.
        ends_options_short: Short options whose value is what runs, after
            which every token belongs to it (``python -m module``).
        abbreviations: Whether the program expands unambiguous prefixes of
            long option names, so a prefix of a refused name is refused.
        unknown_long_takes_value: Whether a long option not listed in
            ``switches`` takes the next token as its value unless that
            token starts with ``-`` (how ``npx`` reads its options).
        switches: Long options known to take no value.
        runs_command: Whether the first positional argument is a command
            run with the remaining arguments.
        subcommand: A subcommand that must come first for the command to
            be started (``pipx run``); other subcommands start nothing.
    """

    refused: Mapping[str, str] = field(default_factory=dict)
    refused_prefixes: Mapping[str, str] = field(default_factory=dict)
    refused_short: Mapping[str, str] = field(default_factory=dict)
    value_long: frozenset[str] = frozenset()
    value_short: str = ""
    attached_short_values: bool = False
    ends_options_short: str = ""
    abbreviations: bool = False
    unknown_long_takes_value: bool = False
    switches: frozenset[str] = frozenset()
    runs_command: bool = False
    subcommand: str = ""


NPX: Final = ProgramOptions(
    refused={
        "call": INLINE_CODE,
        "shell": INLINE_CODE,
        "script-shell": INLINE_CODE,
        "node-options": INLINE_CODE,
        "userconfig": CONFIG_FILE,
        "globalconfig": CONFIG_FILE,
    },
    refused_short={"c": INLINE_CODE},
    value_long=frozenset({"package", "cache", "registry", "prefix", "loglevel"}),
    value_short="pw",
    abbreviations=True,
    unknown_long_takes_value=True,
    switches=frozenset(
        {
            "yes",
            "no",
            "no-install",
            "quiet",
            "silent",
            "version",
            "help",
            "prefer-offline",
            "prefer-online",
            "offline",
            "ignore-scripts",
            "legacy-peer-deps",
            "force",
        }
    ),
    runs_command=True,
)

NODE: Final = ProgramOptions(
    refused={
        "eval": INLINE_CODE,
        "print": INLINE_CODE,
        "require": INLINE_CODE,
        "import": INLINE_CODE,
        "loader": INLINE_CODE,
        "experimental-loader": INLINE_CODE,
        "run": INLINE_CODE,
        "env-file": ENV_FILE,
        "env-file-if-exists": ENV_FILE,
    },
    refused_prefixes={"inspect": INLINE_CODE, "debug": INLINE_CODE},
    refused_short={"e": INLINE_CODE, "p": INLINE_CODE, "r": INLINE_CODE},
    value_long=frozenset(
        {
            "conditions",
            "title",
            "input-type",
            "disable-warning",
            "dns-result-order",
            "icu-data-dir",
            "openssl-config",
            "redirect-warnings",
            "report-filename",
            "report-signal",
            "snapshot-blob",
            "unhandled-rejections",
            "watch-path",
            "diagnostic-dir",
            "experimental-policy",
            "experimental-default-type",
        }
    ),
    value_short="C",
)

PYTHON: Final = ProgramOptions(
    refused_short={"c": INLINE_CODE},
    value_long=frozenset({"check-hash-based-pycs"}),
    value_short="WX",
    attached_short_values=True,
    ends_options_short="m",
)

UVX: Final = ProgramOptions(
    refused={"env-file": ENV_FILE},
    value_long=frozenset(
        {
            "from",
            "with",
            "with-editable",
            "with-requirements",
            "constraints",
            "build-constraints",
            "overrides",
            "python",
            "python-platform",
            "torch-backend",
            "index",
            "default-index",
            "index-url",
            "extra-index-url",
            "find-links",
            "index-strategy",
            "keyring-provider",
            "resolution",
            "prerelease",
            "fork-strategy",
            "exclude-newer",
            "exclude-newer-package",
            "upgrade-package",
            "reinstall-package",
            "refresh-package",
            "no-build-package",
            "no-binary-package",
            "only-binary-package",
            "no-build-isolation-package",
            "config-setting",
            "config-settings-package",
            "link-mode",
            "cache-dir",
            "directory",
            "project",
            "config-file",
            "color",
            "python-preference",
            "allow-insecure-host",
        }
    ),
    value_short="wcbpifPC",
    attached_short_values=True,
    runs_command=True,
)

PIPX: Final = ProgramOptions(
    value_long=frozenset({"spec", "python", "pip-args", "index-url", "backend"}),
    value_short="i",
    runs_command=True,
    subcommand="run",
)

DEFAULT_PROGRAM_OPTIONS: Final[Mapping[str, ProgramOptions]] = {
    "npx": NPX,
    "node": NODE,
    "python": PYTHON,
    "uvx": UVX,
    "pipx": PIPX,
}


def check_program_options(
    argv: Sequence[str],
    rules: Mapping[str, ProgramOptions] = DEFAULT_PROGRAM_OPTIONS,
) -> list[list[str]]:
    """Refuse a command that gives its program an option it may not have.

    Args:
        argv: The command, ``argv[0]`` the program as named (bare or a
            package spec such as ``node@20``).
        rules: The rules per program name; ``python`` covers ``python3``,
            ``python3.12`` and the like.

    Returns:
        The commands started, outermost first: ``argv`` itself, then the
        command ``npx``, ``uvx`` or ``pipx run`` starts (if any), and so on.

    Raises:
        RefusedOptionError: Naming the option, the program and why, e.g.
            ``option "-c" of npx is not allowed: it runs a shell or inline
            code``.
    """
    started = [list(argv)]
    while (command := _check(started[-1], rules, len(started))) is not None:
        started.append(command)
    return started


def check_npx_command(command: str, system_path: str) -> None:
    """Refuse an npx command that is a program rather than a package.

    npx runs a program found on the PATH before it looks for a package, so
    ``npx perl -e ...`` would run perl with inline code.

    Args:
        command: What npx was asked to run, as written.
        system_path: The PATH npx gets inside the sandbox.

    Raises:
        RefusedOptionError: For a package manager, or a bare name that is an
            installed program and not an npm package's bin.
    """
    if program_key(command) in PACKAGE_MANAGERS:
        raise RefusedOptionError(
            f'npx may not run the package manager "{command}": it runs '
            "scripts and shells; name the server package instead"
        )
    if "/" in command or "@" in command:
        return
    found = shutil.which(command, path=system_path)
    # A globally installed npm package's bin is a package all the same.
    if found is not None and "/node_modules/" not in os.path.realpath(found):
        raise RefusedOptionError(
            f'npx would run the installed program "{found}", not an npm '
            "package; start an allowed program directly instead"
        )


def program_key(name: str) -> str:
    """The rules entry for a program name: ``python3.12`` and ``node@20`` too."""
    base = _VERSION_SUFFIX.sub("", name.rsplit("/", 1)[-1])
    return "python" if _PYTHON_NAME.fullmatch(base) else base


def _check(
    argv: list[str], rules: Mapping[str, ProgramOptions], depth: int
) -> list[str] | None:
    """Check one command's options; the command it starts, if any."""
    program, args = argv[0], argv[1:]
    rule = rules.get(program_key(program))
    if rule is None:
        return None
    if depth > MAX_NESTING:
        raise RefusedOptionError(
            f'command "{program}" is nested too deeply in the start command'
        )
    if rule.subcommand:
        # Global options (``pipx --verbose run``) may come first.
        leading = [index for index, arg in enumerate(args) if not arg.startswith("-")]
        if not leading or args[leading[0]] != rule.subcommand:
            return None
        args = args[leading[0] + 1 :]
    command = _scan(program, args, rule)
    return command if rule.runs_command else None


def _scan(program: str, args: list[str], rule: ProgramOptions) -> list[str] | None:
    """Check the options; return what follows them (the command and its args)."""
    index = 0
    while index < len(args):
        token = args[index]
        following = args[index + 1] if index + 1 < len(args) else None
        if token == "--":
            return args[index + 1 :] or None
        if token.startswith("--"):
            name, equals, _ = token[2:].partition("=")
            _refuse_long(program, token.partition("=")[0], name, rule)
            if not equals and _long_takes_value(name, following, rule):
                index += 1
        elif token.startswith("-") and token != "-":
            consumed, ends = _read_short(program, token[1:], rule)
            if ends:
                return None
            index += consumed
        else:
            return args[index:]
        index += 1
    return None


def _refuse_long(program: str, written: str, name: str, rule: ProgramOptions) -> None:
    for refused, reason in rule.refused.items():
        if name == refused or (
            rule.abbreviations and name and refused.startswith(name)
        ):
            raise RefusedOptionError(_message(written, program, reason))
    for prefix, reason in rule.refused_prefixes.items():
        if name.startswith(prefix):
            raise RefusedOptionError(_message(written, program, reason))


def _long_takes_value(name: str, following: str | None, rule: ProgramOptions) -> bool:
    if following is None:
        return False
    if name in rule.value_long:
        return True
    if not rule.unknown_long_takes_value or name in rule.switches:
        return False
    return not name.startswith("no-") and not following.startswith("-")


def _read_short(program: str, letters: str, rule: ProgramOptions) -> tuple[int, bool]:
    """Check short options; the tokens they take next, and whether options end."""
    for position, letter in enumerate(letters):
        reason = rule.refused_short.get(letter)
        if reason is not None:
            raise RefusedOptionError(_message(f"-{letter}", program, reason))
        takes_value = letter in rule.value_short or letter in rule.ends_options_short
        if takes_value and rule.attached_short_values:
            attached = position + 1 < len(letters)
            return (0 if attached else 1), letter in rule.ends_options_short
    last = letters[-1:] if letters else ""
    if last and (last in rule.value_short or last in rule.ends_options_short):
        return 1, last in rule.ends_options_short
    return 0, False


def _message(option: str, program: str, reason: str) -> str:
    return f'option "{option}" of {program} is not allowed: {reason}'
