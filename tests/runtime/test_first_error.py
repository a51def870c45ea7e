"""Finding the error that took a server down inside trio's nested groups."""

from __future__ import annotations

from runtime.listen import first_error


class Damage(Exception):
    """Stands for the log's error in these examples."""


def test_first_error_finds_the_kind_among_several_failures() -> None:
    """Two readers met the damage and a third task failed otherwise."""
    damage = Damage("log damaged")
    group = BaseExceptionGroup(
        "outer",
        [
            ValueError("unrelated"),
            ExceptionGroup("inner", [damage, Damage("again")]),
        ],
    )

    assert first_error(group, Damage) is damage


def test_first_error_is_none_without_the_kind() -> None:
    """No error of the kind anywhere: the caller keeps the traceback."""
    group = ExceptionGroup("outer", [ValueError("a"), KeyError("b")])

    assert first_error(group, Damage) is None
    assert first_error(ValueError("plain"), Damage) is None
