"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class EvaluatorError(Exception):
    """Bad input or usage: a missing file, a corrupt model, a shape that does not fit, ..."""

    exit_code = 2
