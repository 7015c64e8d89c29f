"""`evaluator`: train, prune, assess. Bad input prints one line and exits 2 (`--debug` shows the traceback).

The typer app, its error boundary and `main`; the commands live in assess_commands, train_commands and sweep_command.
"""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Annotated, Any, Callable, TypeVar

import typer
from rich.text import Text

from evaluator.app.describe_command import describe
from evaluator.app.assess_commands import assess, list_attacks_command
from evaluator.app.console import errors
from evaluator.app.sweep_command import sweep
from evaluator.app.train_commands import prune, quantize, train
from evaluator.errors import EvaluatorError

try:  # typer 0.2x carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # older typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[no-redef]


class OneLineErrors(typer.core.TyperGroup):
    """Usage errors (unknown option, missing argument, a value of the wrong type) as one line on stderr and exit 2,
    like every other input error, instead of click's box with the usage."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except ClickException as error:
            context = getattr(error, "ctx", None)
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            print_error(f"{error.format_message()}{hint}")
            sys.exit(error.exit_code)
        except typer.Abort:
            errors.print("aborted")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Size, speed and adversarial robustness of (pruned) classifiers on the deployed ONNX graph.")
DEBUG = {"enabled": False}
Command = TypeVar("Command", bound=Callable[..., Any])


def handles_errors(command: Command) -> Command:
    """The error boundary of a command: a user error (EvaluatorError), a missing optional dependency, a file the
    system refuses and anything unforeseen each become one line on stderr and exit code 2 (`--debug` re-raises)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            errors.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as error:
            if DEBUG["enabled"]:
                raise
            print_error(error_line(error))
            raise typer.Exit(EvaluatorError.exit_code) from None

    return wrapper  # type: ignore[return-value]


def error_line(error: Exception) -> str:
    """One line for any failure of a command."""
    if isinstance(error, EvaluatorError):
        return with_flag(error)
    if isinstance(error, ModuleNotFoundError):
        return f"{error.name} is not installed: pip install 'evaluator[torch]' for training, pruning and white-box attacks"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    if isinstance(error, MemoryError):
        return "out of memory: use fewer samples or smaller batches"
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return (f"unexpected {type(error).__name__}{': ' + first if first else ''} "
            "(a bug, or an input the evaluator does not check yet: --debug shows the traceback)")


# Settings whose flag is not their name with dashes.
FLAGS = {"epsilons": "--eps", "epsilons_l2": "--eps-l2", "epsilons_l1": "--eps-l1", "epsilons_l0": "--eps-l0",
         "skip_latency": "--no-latency", "cascade": "--no-cascade"}


def with_flag(error: EvaluatorError) -> str:
    """The library names a setting as it knows it ("samples must be ..."); the command line shows its flag."""
    message = str(error)
    if error.field and message.startswith(error.field):
        return FLAGS.get(error.field, "--" + error.field.replace("_", "-")) + message[len(error.field):]
    return message


def print_error(message: str) -> None:
    """One line on stderr; the message is printed literally (paths may contain [brackets]; line breaks are folded)."""
    errors.print(Text.assemble(("error: ", "red"), " ".join(message.split())), highlight=False, soft_wrap=True)


@app.callback()
def root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False) -> None:
    DEBUG["enabled"] = debug
    if not debug:  # torch's own deprecation chatter is not for our users
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


app.command()(handles_errors(assess))
app.command("attacks")(list_attacks_command)
app.command()(handles_errors(train))
app.command()(handles_errors(prune))
app.command()(handles_errors(quantize))
app.command()(handles_errors(sweep))
app.command()(handles_errors(describe))


def main() -> None:
    app(prog_name="evaluator")


if __name__ == "__main__":
    main()
