"""Parent vs filter-pruned child on ONNX Runtime (CPU): batch latency side by side, one run, as ratios.

    python bench/prune_latency.py [PARENT.onnx CHILD.onnx] [--batch 256] [--rounds 5]

Rounds alternate parent and child so machine noise hits both alike; the ratio of medians is printed
next to the parameter and MAC reductions, the figures pruning promises.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from evaluator.latency import measure_latency
from evaluator.profile import profile_model
from evaluator.runtime import OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path,
                        default=[ROOT / "models/lenet5_fmnist.onnx", ROOT / "models/lenet5_fmnist_filter-l1_cr4.onnx"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    parent_path, child_path = args.models
    parent = OnnxClassifier(parent_path, "cpu", threads=args.threads)
    child = OnnxClassifier(child_path, "cpu", threads=args.threads)
    medians: dict[str, list[float]] = {"parent": [], "child": []}
    for _ in range(args.rounds):
        for label, model in (("parent", parent), ("child", child)):
            medians[label].append(measure_latency(model, args.batch, min_runs=30, min_seconds=1.0).p50_ms)
    parent_ms, child_ms = statistics.median(medians["parent"]), statistics.median(medians["child"])
    parent_profile, child_profile = profile_model(parent_path, parent.model), profile_model(child_path, child.model)
    print(f"ONNX Runtime CPU, batch {args.batch}, {parent.threads} threads, median of {args.rounds} alternating rounds")
    print(f"{'model':40} {'p50 ms':>9} {'params':>9} {'MACs':>10}")
    for path, ms, profile in ((parent_path, parent_ms, parent_profile), (child_path, child_ms, child_profile)):
        print(f"{path.name:40} {ms:9.3f} {profile.params:9d} {profile.macs:10d}")
    print(f"latency ratio parent/child: {parent_ms / child_ms:.2f}x  "
          f"(params {parent_profile.params / child_profile.params:.2f}x, MACs {parent_profile.macs / child_profile.macs:.2f}x)")


if __name__ == "__main__":
    main()
