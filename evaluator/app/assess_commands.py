"""`evaluator assess` (size, latency, clean and robust accuracy, sign-off) and `evaluator attacks` (the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from evaluator.app.console import console, say_line, task_progress
from evaluator.app.options import (
    DEVICE_HELP, MLFLOW_EXPERIMENT_HELP, MLFLOW_HELP, THREADS_HELP, TORCH_DEVICE_HELP, InputRange, Layout, Provider, Scores,
    check_output_path, input_overrides, parse_epsilons,
)
from evaluator.default_attacks import DEFAULT_CASCADES
from evaluator.errors import EvaluatorError


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
    provider: Annotated[Provider, typer.Option(help="Where ONNX Runtime runs.")] = Provider.auto,
    device: Annotated[int, typer.Option(help=DEVICE_HELP)] = 0,
    torch_device: Annotated[str, typer.Option(help=TORCH_DEVICE_HELP + " For the white-box and transfer attacks.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="ONNX Runtime batch size for accuracy and black-box queries.")] = 256,
    throughput_batch: Annotated[int, typer.Option(help="Batch size of the throughput measurement.")] = 256,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the latency measurement.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sample choice and of random attacks.")] = 0,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the whole assessment as JSON here.")] = None,
    policy: Annotated[Optional[Path], typer.Option(help="Sign-off policy (TOML): exit 0 pass, 1 fail, 2 error.")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="With --policy: write the verdict as Markdown here.")] = None,
    junit: Annotated[Optional[Path], typer.Option(help="With --policy: write the verdict as JUnit XML here.")] = None,
    report: Annotated[Optional[list[str]], typer.Option(help="Write a report format to a file, as FORMAT=PATH (repeatable); "
                                                        "formats: json, csv (the table), markdown and junit (the sign-off, "
                                                        "with --policy).")] = None,
    layout: Annotated[Optional[Layout], typer.Option(help="The graph's image layout. \\[default: the metadata's, else from "
                                                   "the input's shape]")] = None,
    input_range: Annotated[Optional[InputRange], typer.Option(help="The graph's pixel range. \\[default: the metadata's, "
                                                            "else 0-1]")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Per-channel mean the graph expects subtracted, in its pixel units "
                                                "(after --input-range), comma separated.")] = None,
    std: Annotated[Optional[str], typer.Option(help="Per-channel std the graph expects divided by, comma separated.")] = None,
    output: Annotated[Optional[str], typer.Option(help="The graph output to read. \\[default: the first]")] = None,
    scores: Annotated[Optional[Scores], typer.Option(metavar="<kind>", help="What the output holds: logits or probabilities "
                                                   "(read as log-probabilities). "
                                                   "\\[default: probabilities after a final Softmax, else logits]")] = None,
    mlflow: Annotated[Optional[str], typer.Option(help=MLFLOW_HELP.format(what="each model as a run"))] = None,
    mlflow_experiment: Annotated[str, typer.Option(help=MLFLOW_EXPERIMENT_HELP)] = "evaluator",
) -> None:
    """Measure size, latency, clean accuracy and robust accuracy of each ONNX model; with --policy, sign them off."""
    from evaluator.assess_config import BUDGET_FIELDS, AssessConfig, check_budgets, plan_assessment
    from evaluator.assessment import assess as run_assessment
    from evaluator.files import write_text_atomic
    from evaluator.report.terminal import render_table

    if dataset is not None and not dataset.strip():
        raise EvaluatorError("--dataset is empty: name a dataset (fashion-mnist, mnist) or a .npz file")
    budgets = {"Linf": eps, "L2": eps_l2, "L1": eps_l1, "L0": eps_l0}
    config = AssessConfig(
        dataset=dataset, data_dir=data_dir, source=source, surrogate=surrogate, samples=samples,
        cascade=not no_cascade, provider=provider, device=device, torch_device=torch_device,
        batch_size=batch_size, throughput_batch=throughput_batch, threads=threads, seed=seed, skip_latency=no_latency,
        inputs=input_overrides(layout, input_range, mean, std, output, scores),
        **{BUDGET_FIELDS[norm]: parse_epsilons(text) for norm, text in budgets.items() if text is not None},  # type: ignore[arg-type]
        **({} if attacks is None else {"attacks": tuple(a.strip() for a in attacks.split(",") if a.strip())}),
    )
    check_budgets(config)
    outputs = report_outputs(report or [], {"json": json_path, "markdown": markdown, "junit": junit}, policy is not None)
    tracking = None
    if mlflow is not None:
        from evaluator.tracking import tracking_target

        tracking = tracking_target(mlflow, mlflow_experiment)
    gate = None
    if policy is not None:
        from evaluator.policy import load_policy

        gate = load_policy(policy)
    config = plan_assessment(config, [norm for norm, text in budgets.items() if text is not None], gate, attacks is not None)
    if len(models) > 1 and source is not None:
        raise EvaluatorError("--source names one model's source: assess one model at a time with it")
    with task_progress(config.progress_steps(len(models))) as step:
        assessment = run_assessment(list(models), config, step, say_line)
    render_table(assessment, console)
    verdicts = []
    if gate is not None:
        from evaluator.policy import evaluate_policy
        from evaluator.report.signoff import render_verdict_terminal

        for model in assessment.models:
            verdicts.append(evaluate_policy(gate, model))
            render_verdict_terminal(verdicts[-1], console)
    for writer, path in outputs:
        write_text_atomic(path, writer.render(assessment, verdicts))
        console.print(f"wrote {path}")
    if tracking is not None:
        from evaluator.tracking import log_assessment

        runs = log_assessment(tracking, assessment)
        console.print(f"logged {len(runs)} MLflow run{'s' if len(runs) > 1 else ''} to {tracking.uri} "
                      f"(experiment {tracking.experiment})", markup=False, highlight=False)
    if verdicts:
        from evaluator.policy import exit_code

        raise typer.Exit(exit_code(verdicts))


def report_outputs(reports: list[str], flags: dict[str, Optional[Path]], with_policy: bool) -> list[tuple[Any, Path]]:
    """(writer, path) for every --report FORMAT=PATH and the --json / --markdown / --junit short forms, checked before
    any work: a known format, a writable path, a policy for the sign-off formats."""
    from evaluator.report.writers import report_writer

    asked = [(name, path) for name, path in flags.items() if path is not None]
    for item in reports:
        name, separator, path = item.partition("=")
        if not separator or not name.strip() or not path.strip():
            raise EvaluatorError(f"--report takes FORMAT=PATH, got {item!r}")
        asked.append((name.strip(), Path(path.strip())))
    outputs = []
    for name, path in asked:
        writer = report_writer(name)
        flag = f"--{name}" if name in flags else f"--report {name}="
        check_output_path(path, flag)
        if writer.needs_verdict and not with_policy:
            raise EvaluatorError(f"{flag} writes a sign-off verdict: it needs --policy")
        outputs.append((writer, path))
    return outputs


def list_attacks_command() -> None:
    """List the registered attacks with their norm, kind and default options."""
    from rich.table import Table

    from evaluator.attacks import is_minimal, list_attacks

    table = Table("name", "norm", "kind", "mode", "defaults", "summary")
    for cls in list_attacks():
        defaults = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in cls().options().items())
        table.add_row(cls.name, cls.norm.value, cls.kind.value, "minimal norm" if is_minimal(cls) else "fixed budget", defaults, cls.summary)
    console.print(table)
