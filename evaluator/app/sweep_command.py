"""`evaluator sweep`: the command-line face of evaluator/app/sweep_run.py (flags override a TOML file's settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.app.console import console, console_progress, errors
from evaluator.app.options import DEVICE_HELP, THREADS_HELP, TORCH_DEVICE_HELP, Provider, Schedule, choice


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
    seed: Annotated[Optional[int], typer.Option()] = None,
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
             "retime_rounds": retime_rounds, "threads": threads}
    overrides = {key: value for key, value in given.items() if value is not None}
    config = load_sweep_file(config_file, overrides) if config_file else make_config(overrides, "command line")
    with console_progress() as progress:
        result = run_sweep(config, progress, lambda message: errors.print(message))
    from evaluator.table import table_markdown

    console.print(table_markdown(result.rows), markup=False, highlight=False)
    for failure in result.failures:
        console.print(f"[yellow]note[/yellow] {failure}")
    console.print(f"wrote {len(result.files)} files to {result.out}")
