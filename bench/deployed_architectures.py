"""Time and peak memory of the deployed architectures through the CLI: train, prune twice, assess.

    python bench/deployed_architectures.py [--train 5000] [--test 1000] [--epochs 2] [--samples 200] [--threads 1]
                                           [--cifar10 DIR]

Data: CIFAR-10's binary format (data_batch_1..5.bin, test_batch.bin), written from Fashion-MNIST made CIFAR-like
(bilinear 28 -> 32 px, the grey channel repeated three times): `--train` images trained on plus 1000 held out for
validation, spread over the five batch files. `--cifar10 DIR` uses the real CIFAR-10 binary batches instead (all
50,000 training images). For ResNet-18 (width 0.5) and MobileNetV2 (width 1.0) each step runs as its own
`python -m evaluator ...` process, timed from the outside with its peak resident memory (ru_maxrss from wait4):
train `--epochs`, prune filter-l1 to rate 2 then on to rate 4 (iterative, 1 fine-tuning epoch each; the rate-4
command resumes the rate-2 step from its files), assess the rate-4 child with the default attacks on `--samples`
test samples. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from evaluator.datasets import load_dataset
from evaluator.datasets.cifar10 import write_batches

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = 1000
MODELS = (("resnet18", 0.5), ("mobilenetv2", 1.0))


def cifar_like(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) float in [0, 1] -> (N, 3, 32, 32) uint8: bilinear resize, grey repeated."""
    resized = torch.nn.functional.interpolate(torch.from_numpy(x), size=(32, 32), mode="bilinear", align_corners=False)
    return np.round(resized.clamp(0, 1).numpy() * 255).astype(np.uint8).repeat(3, axis=1)


def write_cifar10_folder(folder: Path, train: int, test: int) -> None:
    """Fashion-MNIST as CIFAR-10 binary batches in folder: train + VALIDATION images over 5 files, a test file, the names."""
    data = load_dataset("fashion-mnist")
    assert data.train is not None
    count = train + VALIDATION
    write_batches(folder, (cifar_like(data.train.x[:count]), data.train.y[:count]),
                  (cifar_like(data.test.x[:test]), data.test.y[:test]), data.classes)


def run_step(args: list[str]) -> tuple[float, float, str]:
    """Seconds, peak resident MiB and output of `python -m evaluator ARGS` in a child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "evaluator", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"step failed: evaluator {' '.join(args)}\n{output}")
    return seconds, usage.ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=5000, help="training images (1000 more are held out)")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of each parent")
    parser.add_argument("--cifar10", type=Path, help="a folder of the real CIFAR-10 binary batches, used instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deployed_architectures_"))
    data = args.cifar10 or work / "cifar-10-batches-bin"
    if args.cifar10 is None:
        write_cifar10_folder(data, args.train, args.test)
    threads = ["--threads", str(args.threads)]
    rows = []
    for arch, width in MODELS:
        out = work / arch
        out.mkdir()
        parent = out / f"{arch}.pt2"
        steps = [
            (f"train {args.epochs} epochs", ["train", arch, "--dataset", str(data), "--width", str(width), "--epochs", str(args.epochs),
                               "--validation-size", str(VALIDATION), "--out", str(out), "--name", arch, *threads]),
            *[(f"prune filter-l1 to {rates.split(',')[-1]}",
               ["prune", str(parent), "--method", "filter-l1", "--rate", rates, "--finetune-epochs", "1", *threads])
              for rates in ("2", "2,4")],
            ("assess rate 4", ["assess", str(out / f"{arch}_filter-l1_cr4.onnx"), "--samples", str(args.samples),
                               "--json", str(out / "assessment.json"), *threads]),
        ]
        for label, step in steps:
            seconds, peak, _ = run_step(step)
            rows.append((f"{arch} x{width:g}", label, seconds, peak, detail(out, arch, label)))
            print(f"{rows[-1][0]} {label}: {seconds:.1f} s, {peak:.0f} MiB", file=sys.stderr, flush=True)
    source = f"CIFAR-10 from {args.cifar10}" if args.cifar10 else f"{args.train} training images of Fashion-MNIST as CIFAR-10 batches"
    print(f"\n{source}, 32 px, {args.threads} thread(s), data and artifacts in {work}\n")
    print("| model | step | seconds | peak RSS MiB | result |\n|---|---|---:|---:|---|")
    for model, label, seconds, peak, text in rows:
        print(f"| {model} | {label} | {seconds:.1f} | {peak:.0f} | {text} |")


def detail(out: Path, arch: str, label: str) -> str:
    """The step's headline: ONNX weights and test accuracy, or clean and worst-case robust accuracy per norm and epsilon."""
    if label.startswith("assess"):
        model = json.loads((out / "assessment.json").read_text())["models"][0]
        robust = ", ".join(f"{case['norm']} {case['epsilon']:.3g}: {case['robust_accuracy']:.3f}" for case in model["robustness"])
        return f"{model['params'] / 1e6:.2f}M params, clean acc {model['clean_accuracy']:.3f}, worst robust {robust}"
    stem = arch if label.startswith("train") else f"{arch}_filter-l1_cr{label.rsplit(' ', 1)[-1]}"
    card = json.loads((out / f"{stem}.json").read_text())
    weights = sum(int(np.prod(tensor.dims)) for tensor in onnx.load(str(out / f"{stem}.onnx")).graph.initializer)
    return f"{weights / 1e6:.2f}M ONNX weights, test acc {card['test_accuracy']:.3f}"


if __name__ == "__main__":
    main()
