"""`evaluator sweep`: the command-line face of evaluator/app/sweep_run.py (flags override a TOML file's settings)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from evaluator.app.console import console, console_progress, errors
from evaluator.app.options import (
    DEVICE_HELP, MLFLOW_EXPERIMENT_HELP, MLFLOW_HELP, THREADS_HELP, TORCH_DEVICE_HELP, Provider, Schedule, choice,
)

if TYPE_CHECKING:
    from evaluator.app.sweep_run import SweepResult
    from evaluator.tracking import TrackingTarget


def sweep(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file of sweep settings (flags override it).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Architecture to train (lenet5, resnet8, vgg11, resnet18, mobilenetv2) or a parent .pt2. \\[default: lenet5]")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Results directory. \\[default: sweep-results]")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="fashion-mnist, mnist, cifar10, a train/test .npz, a folder of "
                                                   "CIFAR-10 binary batches or an image folder. \\[default: the one a "
                                                   "parent .pt2's metadata names; fashion-mnist for a parent trained here]")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's IDX files.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Side in pixels of the RGB images an image folder is decoded "
                                                       "to for a parent trained here. \\[default: 224]")] = None,
    methods: Annotated[Optional[str], typer.Option(help="Pruning methods, comma separated. \\[default: the study's nine]")] = None,
    rates: Annotated[Optional[str], typer.Option(help="Compression rates, comma separated; 1 is the parent. \\[default: 1,2,4,8,16,32,64]")] = None,
    schedule: Annotated[Optional[Schedule], typer.Option(help="Pruning schedule. \\[default: iterative]")] = None,
    precisions: Annotated[Optional[str], typer.Option(help="Precisions of every variant, comma separated: fp32, int8, "
                                                      "int8-dynamic, fp16. \\[default: fp32]")] = None,
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
    provider: Annotated[Optional[Provider], typer.Option(help="Where ONNX Runtime runs. \\[default: auto]")] = None,
    device: Annotated[Optional[int], typer.Option(help=DEVICE_HELP + " \\[default: 0]")] = None,
    torch_device: Annotated[Optional[str], typer.Option(help=TORCH_DEVICE_HELP + " For training, fine-tuning and the "
                                                        "attacks. \\[default: auto]")] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the latency measurement.")] = False,
    retime_rounds: Annotated[Optional[int], typer.Option(help="After assessing, time every variant again in this many "
                                                         "interleaved rounds (steadier ratios on a shared machine). \\[default: 0]")] = None,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    workers: Annotated[Optional[int], typer.Option(help="Run the steps as Ray tasks on a local Ray runtime of this many "
                                                   "CPUs (the ray extra; 1: in this process). \\[default: 1]")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="Run the steps on this Ray cluster (HOST:PORT, ray://HOST:PORT "
                                                       "or auto); OUT must be on a filesystem every node shares.")] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    mlflow: Annotated[Optional[str], typer.Option(help=MLFLOW_HELP.format(what="the sweep as a parent run with one nested run "
                                                                          "per variant"))] = None,
    mlflow_experiment: Annotated[str, typer.Option(help=MLFLOW_EXPERIMENT_HELP)] = "evaluator",
) -> None:
    """Prune a parent with every method to every rate, assess every variant, write table, figures and report."""
    from evaluator.app.sweep_config import load_sweep_file, make_config
    from evaluator.app.sweep_run import run_sweep

    given = {"source": source, "out": out, "dataset": dataset, "data_dir": data_dir, "image_size": image_size,
             "methods": methods, "rates": rates, "precisions": precisions,
             "schedule": choice(schedule), "rate_tolerance": rate_tolerance, "finetune_epochs": finetune_epochs, "train_epochs": train_epochs, "width": width,
             "attacks": attacks, "epsilons": eps, "epsilons_l2": eps_l2, "epsilons_l1": eps_l1, "epsilons_l0": eps_l0,
             "samples": samples, "provider": choice(provider), "device": device,
             "torch_device": torch_device, "seed": seed, "skip_latency": True if no_latency else None,
             "retime_rounds": retime_rounds, "threads": threads,
             "workers": workers, "ray_address": ray_address}
    overrides = {key: value for key, value in given.items() if value is not None}
    config = load_sweep_file(config_file, overrides) if config_file else make_config(overrides, "command line")
    tracking = None
    if mlflow is not None:
        from evaluator.tracking import tracking_target

        tracking = tracking_target(mlflow, mlflow_experiment)  # before any work
    with console_progress() as progress:
        result = run_sweep(config, progress, lambda message: errors.print(message))
    from evaluator.table import table_markdown

    console.print(table_markdown(result.rows), markup=False, highlight=False)
    for failure in result.failures:
        console.print(f"[yellow]note[/yellow] {failure}")
    console.print(f"wrote {len(result.files)} files to {result.out}")
    if tracking is not None:
        runs = track_sweep(tracking, result)
        console.print(f"logged the sweep and {len(runs) - 1} variant runs to {tracking.uri} (experiment "
                      f"{tracking.experiment}, parent run {runs[0]})", markup=False, highlight=False)


def track_sweep(tracking: TrackingTarget, result: SweepResult) -> list[str]:
    """The sweep as one MLflow run (the resolved settings as params; sweep.json, the tables, figures and report as
    artifacts; metrics: variants and failures, counts) nesting one run per table row (its cached assessment JSON and
    its card as artifacts). Every call logs new runs: a sweep served from its cache is logged again. The run ids,
    the sweep's first."""
    from evaluator.files import read_json_object
    from evaluator.table import parent_row
    from evaluator.tracking import RunRecord, log_runs, model_record, params_of

    out = result.out
    table = read_json_object(out / "table.json") or {}
    config, environment = table.get("config") or {}, table.get("environment") or {}
    children = []
    for row in result.rows:
        card = out / "models" / f"{row.variant}.json"
        metadata = (read_json_object(card) or {}).get("metadata")
        children.append(model_record(row, config, environment, metadata,
                                     [(out / "assessments" / f"{row.variant}.json", ""), (card, "card")]))
    parent = parent_row(result.rows)
    tags = {"evaluator_version": str(environment.get("evaluator", "unknown")), "out": str(out.resolve()),
            "parent": Path(parent.path).name if parent else "none", "parent_sha256": parent.sha256 if parent else "none"}
    files = [path for path in (out / "sweep.json", *result.files) if path.is_file()]
    artifacts = tuple((path, "" if path.parent == out else path.parent.relative_to(out).as_posix()) for path in files)
    sweep = RunRecord(f"sweep {Path(str(config.get('source', 'parent'))).stem}", params_of(config),
                      {"variants": float(len(result.rows)), "failures": float(len(result.failures))}, tags, artifacts)
    return log_runs(tracking, children, sweep)
