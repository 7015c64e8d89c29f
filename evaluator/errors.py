"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations


class EvaluatorError(Exception):
    """Bad input or usage: a missing file, a corrupt model, a shape that does not fit, ...

    `field` names the setting at fault as the library knows it (an AssessConfig field such as "samples", or
    "source", "data_dir"); the message names the value, never a command-line flag. The applications add the flag
    (`--samples`) or the config key where they report it."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def first_line(error: Exception) -> str:
    """The first line of an exception's message (its type's name when it has none): libraries' errors in one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
