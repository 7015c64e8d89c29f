"""Which pruning method reaches which compression rate on which model: the lab's coverage matrix.

    python bench/rate_coverage.py [MODEL.pt2 ...] [--rates 2,4,8,16,32,64]

Without arguments it uses the zoo's trained models that exist (models/*_fmnist.pt2, see
models/make_zoo.sh). Each cell is the achieved rate (one-shot, no fine-tuning: reaching a rate does not
depend on it) or `-` where the method cannot reach it within 5 %, with the reason counted below. A crash
in any cell is a bug and stops the run.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch

from evaluator.errors import EvaluatorError
from exporters.artifacts import load_trainable
from exporters.pruning.census import prunable_layers, take_census
from exporters.pruning.engine import Target, prune_to_target
from exporters.pruning.options import PruneOptions
from evaluator.catalogue import METHODS

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--rates", default="2,4,8,16,32,64")
    args = parser.parse_args()
    models = args.models or sorted(p for p in (ROOT / "models").glob("*_fmnist.pt2"))
    rates = [float(r) for r in args.rates.split(",")]
    reasons: collections.Counter[str] = collections.Counter()
    for path in models:
        model, spec, _ = load_trainable(path)
        example = torch.rand(1, spec.in_channels, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(0))
        calibration = (torch.rand(64, *example.shape[1:]), torch.arange(64) % spec.num_classes)
        print(f"\n{path.name}: {sum(p.numel() for p in model.parameters()):,} parameters")
        print(f"{'method':32}" + "".join(f"{r:>8g}" for r in rates))
        for method in METHODS.values():
            layers = prunable_layers(model, method.granularity, method.conv_only)
            root = take_census(model, layers, example)
            cells = []
            for rate in rates:
                try:
                    _, outcome = prune_to_target(model, Target(rate, basis=method.default_basis), root,  # type: ignore[arg-type]
                                                 PruneOptions(method, method.scope or "local", example, calibration))
                    cells.append(f"{outcome.achieved_rate:8.2f}")
                except EvaluatorError as error:
                    cells.append(f"{'-':>8}")
                    reasons[str(error).split(":")[-1].strip()] += 1
            print(f"{method.name:32}" + "".join(cells))
    print("\nwhy a rate was out of reach (count):")
    for reason, count in reasons.most_common():
        print(f"  {count:4d}  {reason}")


if __name__ == "__main__":
    main()
