"""`evaluator`: train, prune, assess. Bad input prints one line and exits 2 (`--debug` shows the traceback)."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from evaluator.default_attacks import DEFAULT_CASCADES, default_attacks
from evaluator.errors import EvaluatorError
from evaluator.files import check_name

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


THREADS_HELP = "Threads of torch and ONNX Runtime, 1 to 1024 (default: the free cores, see README)."

app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="Size, speed and adversarial robustness of (pruned) classifiers on the deployed ONNX graph.")
console = Console(width=None if sys.stdout.isatty() else 260)  # pipes and CI logs get the whole table
errors = Console(stderr=True)
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
        return str(error)
    if isinstance(error, ModuleNotFoundError):
        return f"{error.name} is not installed: pip install 'evaluator[torch]' for training, pruning and white-box attacks"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    if isinstance(error, MemoryError):
        return "out of memory: use fewer samples or smaller batches"
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return (f"unexpected {type(error).__name__}{': ' + first if first else ''} "
            "(a bug, or an input the evaluator does not check yet: --debug shows the traceback)")


def print_error(message: str) -> None:
    """One line on stderr; the message is printed literally (paths may contain [brackets]; line breaks are folded)."""
    errors.print(Text.assemble(("error: ", "red"), " ".join(message.split())), highlight=False, soft_wrap=True)


def check_output_path(path: Path | None, flag: str) -> None:
    """Fail before the work, not after it, when a result file cannot be written."""
    if path is None:
        return
    if path.is_dir():
        raise EvaluatorError(f"{flag} {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if any(folder.exists() and not folder.is_dir() for folder in (parent, *parent.parents)):
        raise EvaluatorError(f"cannot write {path}: a parent of it is a file")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise EvaluatorError(f"cannot write {path}: {parent} is not writable")


def check_output_folder(path: Path, flag: str = "--out") -> None:
    """An output folder that exists as a folder or can be made (no file in its place or above it)."""
    if path.exists() and not path.is_dir():
        raise EvaluatorError(f"{flag} {path} is a file, not a folder")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise EvaluatorError(f"{flag} {path}: a parent of it is a file")


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**63:
        raise EvaluatorError(f"--seed must be a whole number from 0 to 2**63 - 1, got {seed}")


def positive_finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value) or value <= 0:
            raise EvaluatorError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


@app.callback()
def root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False) -> None:
    DEBUG["enabled"] = debug
    if not debug:  # torch's own deprecation chatter is not for our users
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


def progress_bar() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=errors, transient=True)


def parse_epsilons(text: str) -> tuple[float, ...]:
    """'8/255,0.1' -> (0.0313..., 0.1)."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(Fraction(part.strip())))
        except (ValueError, ZeroDivisionError, OverflowError):
            raise EvaluatorError(f"cannot read epsilon {part.strip()!r}: use numbers or fractions like 8/255") from None
    return tuple(values)


@contextmanager
def task_progress(total: int) -> Iterator[Callable[[str], None]]:
    with progress_bar() as bar:
        task = bar.add_task("starting", total=total)
        first = {"step": True}

        def step(message: str) -> None:
            if not first["step"]:
                bar.advance(task)
            first["step"] = False
            bar.update(task, description=message)

        yield step
        bar.update(task, completed=total)


@app.command()
@handles_errors
def assess(
    models: Annotated[list[Path], typer.Argument(help="ONNX models to assess (one table row each).")],
    dataset: Annotated[Optional[str], typer.Option(help="fashion-mnist, mnist or a .npz; default: the model's metadata.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's IDX files.")] = None,
    source: Annotated[Optional[Path], typer.Option(help="PyTorch source (.pt2) for white-box attacks; default: from metadata.")] = None,
    eps: Annotated[Optional[str], typer.Option(help="Linf budgets in [0, 1] pixel units, comma separated; fractions allowed. \\[default: 8/255]")] = None,
    eps_l2: Annotated[Optional[str], typer.Option(help="L2 budgets (pixel units over all values), comma separated. \\[default: 1.0]")] = None,
    eps_l1: Annotated[Optional[str], typer.Option(help="L1 budgets (pixel units over all values), comma separated. \\[default: 10]")] = None,
    eps_l0: Annotated[Optional[str], typer.Option(help="L0 budgets in changed pixels, comma separated. \\[default: 10]")] = None,
    surrogate: Annotated[Optional[Path], typer.Option(help="Transfer surrogate (.pt2, or .onnx via its source); default: the unpruned parent.")] = None,
    attacks: Annotated[Optional[str], typer.Option(help="Attacks by name, comma separated, options as NAME:KEY=VALUE (see `evaluator attacks`). "
                                                   "\\[default: the default cascade of each norm whose budgets --eps, --eps-l2 or the policy give, Linf's "
                                                   f"when none do: {', '.join(DEFAULT_CASCADES['Linf'])}; L2: {', '.join(DEFAULT_CASCADES['L2'])}]")] = None,
    no_cascade: Annotated[bool, typer.Option("--no-cascade", help="Attack every sample with every attack (default: only what is still robust).")] = False,
    samples: Annotated[int, typer.Option(help="Test samples attacked: the first N of a seeded permutation of the test set, so a smaller N "
                                               "attacks a subset (clean accuracy uses the whole test set).")] = 1000,
    provider: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="ONNX Runtime batch size for accuracy and black-box queries.")] = 256,
    throughput_batch: Annotated[int, typer.Option(help="Batch size of the throughput measurement.")] = 256,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the latency measurement.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sample choice and of random attacks.")] = 0,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the whole assessment as JSON here.")] = None,
    policy: Annotated[Optional[Path], typer.Option(help="Sign-off policy (TOML): exit 0 pass, 1 fail, 2 error.")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="With --policy: write the verdict as Markdown here.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="With --policy: write the verdict as JUnit XML here.")] = None,
) -> None:
    """Measure size, latency, clean accuracy and robust accuracy of each ONNX model; with --policy, sign them off."""
    from evaluator.assessment import AssessConfig, assess as run_assessment, check_budgets
    from evaluator.files import json_text, write_text_atomic
    from evaluator.report.terminal import render_table

    if dataset is not None and not dataset.strip():
        raise EvaluatorError("--dataset is empty: name a dataset (fashion-mnist, mnist) or a .npz file")
    budgets = {"Linf": eps, "L2": eps_l2, "L1": eps_l1, "L0": eps_l0}
    fields = {"Linf": "epsilons", "L2": "epsilons_l2", "L1": "epsilons_l1", "L0": "epsilons_l0"}
    config = AssessConfig(
        dataset=dataset, data_dir=data_dir, source=source, surrogate=surrogate, samples=samples,
        cascade=not no_cascade, provider=provider,
        batch_size=batch_size, throughput_batch=throughput_batch, threads=threads, seed=seed, skip_latency=no_latency,
        **{fields[norm]: parse_epsilons(text) for norm, text in budgets.items() if text is not None},  # type: ignore[arg-type]
        **({} if attacks is None else {"attacks": tuple(a.strip() for a in attacks.split(",") if a.strip())}),
    )
    check_budgets(config)
    for path, flag in ((json_path, "--json"), (markdown, "--markdown"), (junit, "--junit")):
        check_output_path(path, flag)
    if (markdown or junit) and policy is None:
        raise EvaluatorError("--markdown and --junit write a sign-off verdict: they need --policy")
    gate = None
    if policy is not None:
        from evaluator.policy import load_policy

        gate = load_policy(policy)
        config = replace(config, latency_batches=gate.latency_batches(), **{
            fields[norm]: tuple(sorted({*config.epsilons_for(norm), *values})) for norm, values in gate.epsilons().items()})
    asked = [norm for norm, text in budgets.items() if text is not None]
    if attacks is None:
        config = replace(config, attacks=default_attacks([*asked, *(gate.epsilons() if gate else ())]))
    norms = {attack.norm.value for attack in config.create_attacks()}
    for norm in asked:
        if norm not in norms:
            flag = {"Linf": "--eps"}.get(norm, f"--eps-{norm.lower()}")
            advice = "" if attacks is not None else ": name them with --attacks (see `evaluator attacks`)"
            raise EvaluatorError(f"{flag} gives {norm} budgets but no selected attack works in {norm} "
                                 f"(selected: {', '.join(config.attacks) or 'none'}){advice}")
    if len(models) > 1 and source is not None:
        raise EvaluatorError("--source names one model's source: assess one model at a time with it")
    steps = len(models) * (2 + (0 if no_latency else 1) + config.progress_steps())
    with task_progress(steps) as step:
        assessment = run_assessment(list(models), config, step)
    render_table(assessment, console)
    data = assessment.to_dict()
    verdicts = []
    if gate is not None:
        from evaluator.policy import evaluate_policy
        from evaluator.report.signoff import render_verdict_terminal, verdict_junit, verdict_markdown, verdict_to_dict

        for model in data["models"]:
            verdict = evaluate_policy(gate, model)
            model["signoff"] = verdict_to_dict(verdict)
            render_verdict_terminal(verdict, console)
            verdicts.append(verdict)
        for path, text in ((markdown, verdict_markdown(verdicts)), (junit, verdict_junit(verdicts))):
            if path is not None:
                write_text_atomic(path, text)
                console.print(f"wrote {path}")
    if json_path is not None:
        write_text_atomic(json_path, json_text(data) + "\n")
        console.print(f"wrote {json_path}")
    if verdicts:
        from evaluator.policy import exit_code

        raise typer.Exit(exit_code(verdicts))


@app.command("attacks")
def list_attacks_command() -> None:
    """List the registered attacks with their norm, kind and default options."""
    from rich.table import Table

    from evaluator.attacks import list_attacks

    from evaluator.attacks import is_minimal

    table = Table("name", "norm", "kind", "mode", "defaults", "summary")
    for cls in list_attacks():
        defaults = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in cls().options().items())
        table.add_row(cls.name, cls.norm.value, cls.kind.value, "minimal norm" if is_minimal(cls) else "fixed budget", defaults, cls.summary)
    console.print(table)


@app.command()
@handles_errors
def train(
    arch: Annotated[str, typer.Argument(help="lenet5, resnet8 or vgg11.")],
    dataset: Annotated[str, typer.Option(help="fashion-mnist, mnist or a .npz with x_train/y_train/x_test/y_test.")] = "fashion-mnist",
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's IDX files.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("."),
    name: Annotated[Optional[str], typer.Option(help="Artifact name (default ARCH_DATASET).")] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs.")] = 30,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better validation accuracy.")] = 3,
    batch_size: Annotated[int, typer.Option()] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    width: Annotated[float, typer.Option(help="Width multiplier of the channels.")] = 1.0,
    validation_size: Annotated[int, typer.Option(help="Validation samples carved from the training set.")] = 5000,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train an architecture and write NAME.pt2, NAME.onnx (verified) and NAME.json."""
    from evaluator.threads import training_threads
    from exporters.train import TrainConfig
    from exporters.workflows import DataOptions, train_architecture

    positive_finite(epochs=epochs, width=width, lr=lr, batch_size=batch_size, validation_size=validation_size, patience=patience)
    check_seed(seed)
    check_output_folder(out)
    default_name = f"{arch}_{Path(dataset).stem if dataset.endswith('.npz') else dataset}"
    stem = out / check_name(default_name if name is None else name, "--name")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, patience=patience, seed=seed)
    with training_threads(threads), progress_bar() as bar:
        artifacts, metadata = train_architecture(arch, stem, DataOptions(dataset, data_dir, validation_size), config, width, bar)
    card = json.loads(artifacts.card.read_text())
    check = card["export_check"]
    console.print(f"trained {arch}: validation accuracy {metadata['training']['validation_accuracy']:.4f}, "
                  f"test accuracy on ORT {check['onnx_accuracy']:.4f} (max |logit diff| vs torch {check['max_abs_logit_diff']:.1e})")
    console.print(f"wrote {artifacts.pt2}, {artifacts.onnx}, {artifacts.card}")


def parse_rates(text: str) -> tuple[float, ...]:
    """'2,4,8' -> (2.0, 4.0, 8.0)."""
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise EvaluatorError(f"cannot read rates {text!r}: use numbers like 2,4,8") from None
    if not all(math.isfinite(rate) for rate in rates):
        raise EvaluatorError(f"rates must be finite numbers, got {text!r}")
    return rates


def print_methods() -> None:
    from rich.table import Table

    from exporters.pruning.methods import METHODS

    table = Table("method", "granularity", "criterion", "scope", "rate basis", "removes channels", "summary")
    for method in METHODS.values():
        table.add_row(method.name, method.granularity, method.criterion, method.scope or "--scope (local)",
                      method.default_basis, "yes" if method.physical else "no (zeros)", method.summary)
    console.print(table)


@app.command()
@handles_errors
def prune(
    source: Annotated[Optional[Path], typer.Argument(help="The parent's .pt2 (written by `evaluator train` or `prune`).")] = None,
    method: Annotated[str, typer.Option(help="Pruning method (see --list).")] = "filter-l1",
    rate: Annotated[str, typer.Option(help="Compression rates, comma separated: weights before / non-zero weights after.")] = "4",
    target: Annotated[str, typer.Option(help="weights (compression rate) or macs (MAC reduction).")] = "weights",
    rate_basis: Annotated[Optional[str], typer.Option(help="all weights or the pruned layers' (default: the method's).")] = None,
    scope: Annotated[Optional[str], typer.Option(help="local or global ranking, for torch-pruning criteria.")] = None,
    round_to: Annotated[Optional[int], typer.Option(help="Keep channel counts multiples of this (filter methods); "
                                                    "default: 8 for models whose channels are multiples of 8, where the rate allows; 1 = never.")] = None,
    schedule: Annotated[str, typer.Option(help="iterative (prune, retrain, prune further) or oneshot.")] = "iterative",
    finetune_epochs: Annotated[int, typer.Option(help="Most fine-tuning epochs per step (early stopping on validation).")] = 10,
    patience: Annotated[int, typer.Option()] = 3,
    lr: Annotated[float, typer.Option(help="Adam learning rate of the fine-tuning.")] = 1e-3,
    dataset: Annotated[Optional[str], typer.Option(help="Default: the dataset in the source's metadata.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option()] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: beside the source).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Artifact name prefix (default SOURCE_METHOD); _crRATE is appended.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    tolerance: Annotated[float, typer.Option(help="Accepted relative distance of the achieved rate from each target "
                                             "(coarse filter steps on small models may need 0.25).")] = 0.05,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    list_methods: Annotated[bool, typer.Option("--list", help="List the pruning methods and exit.")] = False,
) -> None:
    """Prune a model to one or more compression rates, fine-tune each step and write verified artifacts."""
    if list_methods:
        print_methods()
        return
    from exporters.pruning.schedule import PruneRequest, run_schedule
    from exporters.train import TrainConfig

    if source is None:
        raise EvaluatorError("prune needs the parent's .pt2 (or --list)")
    choices = {"--target": (target, ("weights", "macs")), "--rate-basis": (rate_basis, ("all", "pruned", None)),
               "--scope": (scope, ("local", "global", None)), "--schedule": (schedule, ("iterative", "oneshot"))}
    for flag, (value, allowed) in choices.items():
        if value not in allowed:
            raise EvaluatorError(f"{flag} must be one of {', '.join(a for a in allowed if a)}, got {value!r}")
    if finetune_epochs < 0:
        raise EvaluatorError("--finetune-epochs must be >= 0")
    positive_finite(lr=lr, patience=patience)
    check_seed(seed)
    if name is not None:
        check_name(name, "--name")
    if out is not None:
        check_output_folder(out)
    request = PruneRequest(method, parse_rates(rate), target, rate_basis, scope, round_to, schedule,  # type: ignore[arg-type]
                           TrainConfig(epochs=finetune_epochs, learning_rate=lr, patience=patience, seed=seed), tolerance)
    from evaluator.threads import training_threads

    with training_threads(threads), progress_bar() as bar:
        steps = run_schedule(source, request, out or source.parent, name, dataset, data_dir, seed, bar)
    for step in steps:
        record = step.outcome
        rates = record["rates"]
        console.print(f"{'resumed' if step.resumed else 'pruned'} {record['method']} CR {step.rate:g}: achieved {record['achieved_rate']:.3f} "
                      f"(all weights {rates['all']:.2f}, pruned layers {rates['pruned']:.2f}, MACs {rates['macs']:.2f}), "
                      f"params {record['after']['params']:,}, non-zero {record['after']['nonzero']:,}, "
                      f"test accuracy {step.test_accuracy:.4f} -> {step.artifacts.onnx}")
        if record["granularity"] == "filter" and record.get("round_to") is None:
            console.print("  note: channel counts are not all multiples of 8: ONNX Runtime's fast CPU convolutions (NCHWc, "
                          "blocks of 8 channels, 16 on AVX-512 CPUs) pad or skip such layers; --round-to 8 (or 16) with a "
                          "nearby rate avoids it", style="yellow")


@app.command()
@handles_errors
def sweep(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file of sweep settings (flags override it).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Architecture to train (lenet5, resnet8, vgg11) or a parent .pt2. \\[default: lenet5]")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Results directory. \\[default: sweep-results]")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="fashion-mnist, mnist or a train/test .npz.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's IDX files.")] = None,
    methods: Annotated[Optional[str], typer.Option(help="Pruning methods, comma separated. \\[default: the study's nine]")] = None,
    rates: Annotated[Optional[str], typer.Option(help="Compression rates, comma separated; 1 is the parent. \\[default: 1,2,4,8,16,32,64]")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="iterative or oneshot.")] = None,
    rate_tolerance: Annotated[Optional[float], typer.Option(help="Accepted relative distance of an achieved rate from its "
                                                            "target. \\[default: 0.05]")] = None,
    finetune_epochs: Annotated[Optional[int], typer.Option(help="Most fine-tuning epochs per pruning step. \\[default: 10]")] = None,
    train_epochs: Annotated[Optional[int], typer.Option(help="Most training epochs of a parent trained here. \\[default: 30]")] = None,
    width: Annotated[Optional[float], typer.Option(help="Width multiplier of a parent trained here.")] = None,
    attacks: Annotated[Optional[str], typer.Option(help="Attacks, comma separated (see `evaluator attacks`).")] = None,
    eps: Annotated[Optional[str], typer.Option(help="Linf budgets. \\[default: 8/255]")] = None,
    eps_l2: Annotated[Optional[str], typer.Option(help="L2 budgets. \\[default: 1.0]")] = None,
    eps_l1: Annotated[Optional[str], typer.Option(help="L1 budgets. \\[default: 10]")] = None,
    eps_l0: Annotated[Optional[str], typer.Option(help="L0 budgets in pixels. \\[default: 10]")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Test samples attacked per variant. \\[default: 1000]")] = None,
    provider: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda.")] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the latency measurement.")] = False,
    retime_rounds: Annotated[Optional[int], typer.Option(help="After assessing, time every variant again in this many "
                                                         "interleaved rounds (steadier ratios on a shared machine). \\[default: 0]")] = None,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
) -> None:
    """Prune a parent with every method to every rate, assess every variant, write table, figures and report."""
    from evaluator.sweep import load_sweep_file, make_config, run_sweep

    given = {"source": source, "out": out, "dataset": dataset, "data_dir": data_dir, "methods": methods, "rates": rates,
             "schedule": schedule, "rate_tolerance": rate_tolerance, "finetune_epochs": finetune_epochs, "train_epochs": train_epochs, "width": width,
             "attacks": attacks, "epsilons": eps, "epsilons_l2": eps_l2, "epsilons_l1": eps_l1, "epsilons_l0": eps_l0,
             "samples": samples, "provider": provider, "seed": seed, "skip_latency": True if no_latency else None,
             "retime_rounds": retime_rounds, "threads": threads}
    overrides = {key: value for key, value in given.items() if value is not None}
    config = load_sweep_file(config_file, overrides) if config_file else make_config(overrides, "command line")
    with progress_bar() as bar:
        result = run_sweep(config, bar, lambda message: bar.console.print(message))
    from evaluator.table import table_markdown

    console.print(table_markdown(result.rows), markup=False, highlight=False)
    for failure in result.failures:
        console.print(f"[yellow]note[/yellow] {failure}")
    console.print(f"wrote {len(result.files)} files to {result.out}")


def main() -> None:
    app(prog_name="evaluator")


if __name__ == "__main__":
    main()
