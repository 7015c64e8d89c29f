"""Converted ONNX graph vs its .pt2 source: forward + backward time of one batch, as a ratio.

    python bench/onnx_torch_speed.py [MODEL.onnx ...] [--batch 128] [--rounds 5] [--threads 1]

Each MODEL.onnx needs its source MODEL.pt2 beside it (loaded as the white-box attacks load it:
evaluator.source.load_source). Rounds alternate the two modules so machine noise hits both alike; the
ratio of medians (converted / source) is printed with the converted graph's interpreted node count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from evaluator.datasets import load_dataset
from evaluator.onnx_torch import convert_onnx, verify_conversion
from evaluator.source import load_source

ROOT = Path(__file__).resolve().parents[1]


def step_seconds(module: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward and backward pass of the summed top logits w.r.t. x (N, C, H, W)."""
    times = []
    for _ in range(repeats):
        inputs = x.clone().requires_grad_(True)
        start = time.perf_counter()
        module(inputs).max(dim=1).values.sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, default=sorted(p for p in (ROOT / "models").glob("*.onnx")
                                                                          if p.with_suffix(".pt2").is_file()))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = load_dataset("fashion-mnist", test_only=True).test
    x = torch.from_numpy(np.ascontiguousarray(test.x[:args.batch]))
    print(f"torch {torch.__version__} CPU, {args.threads} thread(s), batch {args.batch}, median of {args.rounds} alternating rounds")
    print(f"{'model':36} {'nodes':>6} {'source ms':>10} {'converted ms':>13} {'ratio':>7} {'max |diff|':>11}")
    for path in args.models:
        converted, source = convert_onnx(path), load_source(path.with_suffix(".pt2"))
        check = verify_conversion(converted, path, test.x[:256]).require()
        timings: dict[str, list[float]] = {"source": [], "converted": []}
        for _ in range(args.rounds):
            for label, module in (("source", source), ("converted", converted)):
                timings[label].append(step_seconds(module, x, repeats=5))
        source_ms, converted_ms = (1000 * statistics.median(timings[k]) for k in ("source", "converted"))
        print(f"{path.stem:36} {len(converted.steps):6d} {source_ms:10.2f} {converted_ms:13.2f} "
              f"{converted_ms / source_ms:7.2f} {check.max_abs_diff:11.2e}")


if __name__ == "__main__":
    main()
