"""`evaluator train` (a new parent) and `evaluator prune` (pruned, fine-tuned variants of a parent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.app.console import console, console_progress, task_progress
from evaluator.app.options import (THREADS_HELP, TORCH_DEVICE_HELP, Architecture, RateBasis, RateTarget, Schedule, Scope, check_output_folder,
                                   check_output_path, check_seed, choice, parse_rates, positive_finite)
from evaluator.errors import EvaluatorError
from evaluator.files import check_name


def train(
    arch: Annotated[Architecture, typer.Argument(help="Architecture to train.")],
    dataset: Annotated[str, typer.Option(help="fashion-mnist, mnist, cifar10, a .npz with x_train/y_train/x_test/y_test, "
                                         "a folder of CIFAR-10 binary batches or an image folder.")] = "fashion-mnist",
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's IDX files.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Side in pixels of the square RGB images an image folder is "
                                                       "decoded to (default 224); other datasets keep their size.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("."),
    name: Annotated[Optional[str], typer.Option(help="Artifact name (default ARCH_DATASET).")] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs.")] = 30,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better validation accuracy.")] = 3,
    batch_size: Annotated[int, typer.Option()] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    width: Annotated[float, typer.Option(help="Width multiplier of the channels.")] = 1.0,
    validation_size: Annotated[int, typer.Option(help="Validation samples carved from the training set.")] = 5000,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    torch_device: Annotated[str, typer.Option(help=TORCH_DEVICE_HELP)] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train an architecture and write NAME.pt2, NAME.onnx (verified) and NAME.json."""
    from evaluator.threads import training_threads
    from evaluator.torch_device import training_device
    from exporters.train import TrainConfig
    from exporters.workflows import DataOptions, TrainRequest, train_architecture

    positive_finite(epochs=epochs, width=width, lr=lr, batch_size=batch_size, validation_size=validation_size, patience=patience)
    if image_size is not None:
        positive_finite(image_size=image_size)
    check_seed(seed)
    check_output_folder(out)
    default_name = f"{arch.value}_{Path(dataset).stem}"  # a .npz or a folder by its name
    stem = out / check_name(default_name if name is None else name, "--name")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, patience=patience, seed=seed)
    shape = None if image_size is None else (3, image_size, image_size)
    request = TrainRequest(arch.value, DataOptions(dataset, data_dir, validation_size, shape), config, width)
    with training_threads(threads), training_device(torch_device), console_progress() as progress:
        artifacts, metadata = train_architecture(request, stem, progress)
    card = json.loads(artifacts.card.read_text())
    check = card["export_check"]
    console.print(f"trained {arch.value}: validation accuracy {metadata['training']['validation_accuracy']:.4f}, "
                  f"test accuracy on ORT {check['onnx_accuracy']:.4f} (max |logit diff| vs torch {check['max_abs_logit_diff']:.1e})")
    console.print(f"wrote {artifacts.pt2}, {artifacts.onnx}, {artifacts.card}")


def print_methods() -> None:
    """`prune --list`: the pruning methods as a table."""
    from rich.table import Table

    from evaluator.catalogue import METHODS

    table = Table("method", "granularity", "criterion", "scope", "rate basis", "removes channels", "summary")
    for method in METHODS.values():
        table.add_row(method.name, method.granularity, method.criterion, method.scope or "--scope (local)",
                      method.default_basis, "yes" if method.physical else "no (zeros)", method.summary)
    console.print(table)


def prune(
    source: Annotated[Optional[Path], typer.Argument(help="The parent's .pt2 (written by `evaluator train` or `prune`, "
                                                                   "or any torch.export program with a dynamic batch: then give --dataset).")] = None,
    method: Annotated[str, typer.Option(help="Pruning method (see --list).")] = "filter-l1",
    rate: Annotated[str, typer.Option(help="Compression rates, comma separated: weights before / non-zero weights after.")] = "4",
    target: Annotated[RateTarget, typer.Option(help="weights (compression rate) or macs (MAC reduction).")] = RateTarget.weights,
    rate_basis: Annotated[Optional[RateBasis], typer.Option(help="all weights or the pruned layers' (default: the method's).")] = None,
    scope: Annotated[Optional[Scope], typer.Option(help="local or global ranking, for torch-pruning criteria.")] = None,
    round_to: Annotated[Optional[int], typer.Option(help="Keep channel counts multiples of this (filter methods); "
                                                    "default: 8 for models whose channels are multiples of 8, where the rate allows; 1 = never.")] = None,
    schedule: Annotated[Schedule, typer.Option(help="iterative (prune, retrain, prune further) or oneshot.")] = Schedule.iterative,
    finetune_epochs: Annotated[int, typer.Option(help="Most fine-tuning epochs per step (early stopping on validation).")] = 10,
    patience: Annotated[int, typer.Option()] = 3,
    lr: Annotated[float, typer.Option(help="Adam learning rate of the fine-tuning.")] = 1e-3,
    dataset: Annotated[Optional[str], typer.Option(help="Default: the dataset in the source's metadata (needed for a plain torch.export .pt2).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option()] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: beside the source).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Artifact name prefix (default SOURCE_METHOD); _crRATE is appended.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    tolerance: Annotated[float, typer.Option(help="Accepted relative distance of the achieved rate from each target "
                                             "(coarse filter steps on small models may need 0.25).")] = 0.05,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
    torch_device: Annotated[str, typer.Option(help=TORCH_DEVICE_HELP + " For the fine-tuning.")] = "auto",
    list_methods: Annotated[bool, typer.Option("--list", help="List the pruning methods and exit.")] = False,
) -> None:
    """Prune a model to one or more compression rates, fine-tune each step and write verified artifacts."""
    if list_methods:
        print_methods()
        return
    from exporters.pruning.schedule import PruneJob, PruneRequest, run_schedule
    from exporters.train import TrainConfig

    if source is None:
        raise EvaluatorError("prune needs the parent's .pt2 (or --list)")
    if finetune_epochs < 0:
        raise EvaluatorError("--finetune-epochs must be >= 0")
    positive_finite(lr=lr, patience=patience)
    check_seed(seed)
    if name is not None:
        check_name(name, "--name")
    if out is not None:
        check_output_folder(out)
    finetune = TrainConfig(epochs=finetune_epochs, learning_rate=lr, patience=patience, seed=seed)
    request = PruneRequest(method, parse_rates(rate), metric=target.value, basis=choice(rate_basis), scope=choice(scope),  # type: ignore[arg-type]
                           round_to=round_to, schedule=schedule.value, finetune=finetune, tolerance=tolerance)  # type: ignore[arg-type]
    job = PruneJob(source, out or source.parent, name=name, dataset=dataset, data_dir=data_dir, seed=seed)
    from evaluator.threads import training_threads
    from evaluator.torch_device import training_device

    with training_threads(threads), training_device(torch_device), console_progress() as progress:
        steps = run_schedule(job, request, progress)
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


def quantize(
    model: Annotated[Path, typer.Argument(help="The float32 .onnx to quantize (written by the evaluator, or described "
                                                "by `evaluator describe`).")],
    precision: Annotated[str, typer.Option(help="int8 (static QDQ, calibrated), int8-dynamic or fp16.")] = "int8",
    out: Annotated[Optional[Path], typer.Option(help="Output .onnx (default: MODEL_PRECISION.onnx beside the model, "
                                                "where its .pt2 source stays in reach of `assess`).")] = None,
    calibration_samples: Annotated[int, typer.Option(help="int8: training images the activation ranges are "
                                                     "calibrated on (a seeded subset; never the test split).")] = 512,
    calibration_method: Annotated[str, typer.Option(help="int8: minmax, entropy or percentile.")] = "minmax",
    dataset: Annotated[Optional[str], typer.Option(help="Default: the dataset in the model's metadata.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option()] = None,
    fp16_io: Annotated[bool, typer.Option("--fp16-io", help="fp16: float16 inputs and outputs too (default float32).")] = False,
    reduce_range: Annotated[Optional[bool], typer.Option("--reduce-range/--full-range", help="int8: weights in 7 bits, "
                                                         "for x86 CPUs without VNNI, whose int8 kernels saturate with 8 "
                                                         "(default: this machine's CPU decides; quantize for the CPU "
                                                         "it will run on).")] = None,
    activations: Annotated[Optional[str], typer.Option(help="int8: uint8 or int8 activations (default: uint8 on x86, "
                                                       "whose int8 kernels take uint8; int8 elsewhere).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the calibration subset.")] = 0,
    threads: Annotated[Optional[int], typer.Option(help=THREADS_HELP)] = None,
) -> None:
    """Quantize a float32 model to int8 or fp16 and write NAME_PRECISION.onnx and .json, checked against its parent."""
    from evaluator.threads import assessment_threads
    from exporters.quantize import QuantizeOptions, quantize_artifact

    check_seed(seed)
    if out is not None:
        check_output_path(out, "--out")
    with assessment_threads(threads) as chosen, task_progress(2) as progress:
        options = QuantizeOptions(precision, calibration_samples, calibration_method, seed, dataset, data_dir, fp16_io,
                                  chosen.threads, reduce_range, activations)
        artifact = quantize_artifact(model, options, out, progress)
    check = artifact.check
    console.print(f"{precision}: test accuracy {check.accuracy:.4f} (float parent {check.parent_accuracy:.4f}, drop "
                  f"{100 * check.accuracy_drop:.2f} points), top-1 agreement with the parent {check.top1_agreement:.4f} "
                  f"on {check.samples:,} test images")
    if check.kernel_agreement is not None and check.kernel_agreement < 0.99:
        console.print(f"  warning: ONNX Runtime's int8 kernels on this CPU depart from the graph's QDQ arithmetic (top-1 "
                      f"agreement {check.kernel_agreement:.4f}, max |logit diff| {check.kernel_max_abs_diff:.3g}): they "
                      "saturate without VNNI; quantize with --reduce-range", style="yellow")
    from evaluator.profile import external_data_files, file_figures

    parent_bytes = file_figures([model, *external_data_files(model)])[1]  # the .onnx and its external data
    own_bytes = artifact.onnx.stat().st_size
    console.print(f"size {own_bytes:,} bytes ({parent_bytes / own_bytes:.2f}x smaller than the parent's {parent_bytes:,})")
    console.print(f"wrote {artifact.onnx}, {artifact.card}")
