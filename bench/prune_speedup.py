"""Filter pruning's promise on ONNX Runtime: latency speedup against MACs reduction, side by side.

    python bench/prune_speedup.py [--archs vgg11,resnet8] [--width 0.5] [--rates 2,4,8] [--method filter-l1]
                                  [--provider cpu|cuda] [--device-id 0]

For each architecture it builds the model (seeded; latency does not depend on trained values), prunes it
with torch-pruning to each rate, exports each variant to ONNX and times all of them in alternating
rounds at batch 256. It prints, per rate, the MACs reduction, the speedup and their ratio (the goal
at rate 4 is a speedup of at least 0.6 x the MACs reduction).

--provider is where ONNX Runtime runs (default cpu); cuda is the evaluator's CUDA path on GPU --device-id (CUDA graphs
where the graph allows, else plain CUDA), each run timed on the wall clock around a call that returns the logits on
the host. CUDA asked for where ONNX Runtime cannot use it is one line, exit code 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import onnx
import torch

from evaluator.errors import EvaluatorError
from evaluator.latency import measure_latency
from evaluator.profile import count_macs
from evaluator.runtime import CUDA_EP, OnnxClassifier
from exporters.architectures import ArchSpec, build_model
from exporters.artifacts import export_program, to_onnx
from exporters.pruning.census import prunable_layers, take_census
from exporters.pruning.engine import Target, prune_to_target
from exporters.pruning.options import PruneOptions
from evaluator.catalogue import get_method


def export(model: torch.nn.Module, path: Path, size: int) -> Path:
    example = torch.rand(2, 1, size, size)
    onnx.save(to_onnx(export_program(model.eval(), example), example), str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="vgg11,resnet8")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--rates", default="2,4,8")
    parser.add_argument("--method", default="filter-l1")
    parser.add_argument("--round-to", type=int, default=None,
                        help="channel multiple (default: the pruner's automatic 8 where the rate allows; 1 = never)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu", help="where ONNX Runtime runs (default cpu)")
    parser.add_argument("--device-id", type=int, default=0, help="the GPU for --provider cuda (default 0)")
    args = parser.parse_args()
    try:
        bench(args)
    except EvaluatorError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None


def load(path: Path, provider: str, device_id: int) -> OnnxClassifier:
    """The variant on `provider`; CUDA asked for and not used is an EvaluatorError (it would time the CPU as CUDA)."""
    classifier = OnnxClassifier(path, provider, device_id=device_id)  # type: ignore[arg-type]
    if provider == "cuda" and classifier.runtime.used != CUDA_EP:
        raise EvaluatorError(f"ONNX Runtime provider cuda requested but {path.name} runs on {classifier.runtime.used}: "
                             f"{classifier.runtime.note or 'no reason given'}")
    return classifier


def bench(args: argparse.Namespace) -> None:
    method = get_method(args.method)
    rates = [float(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="prune_speedup_"))
    where = f"CUDA (GPU {args.device_id})" if args.provider == "cuda" else "CPU"
    print(f"ONNX Runtime {where}, batch {args.batch}, {args.method}, width {args.width}, round_to {args.round_to}, "
          f"median of {args.rounds} alternating rounds")
    print(f"{'model':12} {'rate/round':>10} {'achieved':>8} {'MACs':>12} {'p50 ms':>9} {'MACs red.':>9} {'speedup':>8} {'speedup/MACs':>12}")
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        model = build_model(ArchSpec(arch, image_size=args.size, width=args.width)).eval()
        example = torch.rand(1, 1, args.size, args.size)
        calibration = (torch.rand(64, 1, args.size, args.size), torch.arange(64) % 10)
        layers = prunable_layers(model, method.granularity, method.conv_only)
        root = take_census(model, layers, example)
        variants = [("1", 1.0, export(model, work / f"{arch}_1.onnx", args.size))]
        for rate in rates:
            options = PruneOptions(method, method.scope or "local", example, calibration, round_to=args.round_to,
                                   tolerance=0.25 if args.round_to not in (None, 1) else 0.05)
            pruned, outcome = prune_to_target(model, Target(rate), root, options)
            variants.append((f"{rate:g}/{outcome.round_to or 1}", outcome.achieved_rate,
                             export(pruned, work / f"{arch}_{rate:g}.onnx", args.size)))
        classifiers = [load(path, args.provider, args.device_id) for _, _, path in variants]
        timings: list[list[float]] = [[] for _ in variants]
        for _ in range(args.rounds):
            for index, classifier in enumerate(classifiers):
                timings[index].append(measure_latency(classifier, args.batch, min_runs=10, min_seconds=1.0).p50_ms)
        base_ms = statistics.median(timings[0])
        base_macs = count_macs(classifiers[0].model)
        for (label, achieved, _), classifier, times in zip(variants, classifiers, timings):
            ms, macs = statistics.median(times), count_macs(classifier.model)
            reduction, speedup = base_macs / macs, base_ms / ms
            print(f"{arch:12} {label:>10} {achieved:8.2f} {macs:12,d} {ms:9.3f} {reduction:9.2f} {speedup:8.2f} {speedup / reduction:12.2f}")


if __name__ == "__main__":
    main()
