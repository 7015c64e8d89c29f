"""Deployment precision on the zoo: what int8 (static, dynamic) and fp16 cost in accuracy and buy in size and CPU speed.

    python bench/precision.py [--work /tmp/precision-bench] [--epochs 15] [--parents lenet5,resnet8,vgg11]
                              [--parents resnet18,mobilenetv2 --epochs 2 --subset 10000]
                              [--precisions int8,int8-dynamic,fp16] [--threads 1] [--rounds 7] [--runs 5]
                              [--runs1 200] [--samples 200] [--no-assess] [--assess-precisions fp32,int8,int8-dynamic]
                              [--out /work/bench-precision.json]

Parents: the zoo's LeNet-5 (models/lenet5_fmnist.*, copied into --work; models/ is never written), and ResNet-8
(width 0.5) and VGG-11 (width 0.25) trained on Fashion-MNIST into --work as `models/make_zoo.sh all` trains them
(`--epochs` overrides its 15 to keep a run short; a parent already in --work trained for the same epochs is reused);
with `--parents resnet18,mobilenetv2`, ResNet-18 (width 0.5) and MobileNetV2 trained on the first --subset
Fashion-MNIST training images (the whole set takes hours on two cores).
Each step runs as its own `python -m evaluator ...` process with `--threads`, timed from the outside with its peak
resident memory:

- `evaluator quantize PARENT.onnx --precision P` for each precision; its card's `precision_check` gives the clean
  accuracy of parent and variant on the 10,000 test images, the drop in points and the top-1 agreement. Sizes: bytes of
  the .onnx files and bytes of their weights (initializers and Constant tensors, scales and zero points included).
- Speed: one process per parent times the parent and its variants side by side on ONNX Runtime's CPU EP
  (intra_op_num_threads = --threads, graph optimisation ALL, as `assess`), round-robin over --rounds rounds (the order
  rotated each round), each round --runs timed runs of one batch of 256 per model after warm-up, then the same at
  batch 1 (--runs1 runs), time.perf_counter around each run. Reported: median samples/s at 256 and median ms at 1 per
  model over all its runs, and the variant/parent ratios with their range over the rounds (each round's ratio of
  medians). The process also counts the compute operators in the graph ONNX Runtime really runs (its optimised graph):
  int8 kernels (QLinearConv, QGemm, ConvInteger, ...), float kernels (Conv, FusedConv, Gemm, ...) by the type of their
  weights (float32 or float16) and Casts: an fp16 graph whose kernels all run on float32 weights gains no speed. For a
  static int8 graph it also measures the test accuracy with ONNX Runtime's optimisations off ("unfused": each
  DequantizeLinear -> Conv in float32, the quantization grid alone) beside the card's (QDQ fused into int8 kernels): a
  gap between them is the int8 kernels' own error on this CPU (e.g. u8s8 saturation of VPMADDUBSW without VNNI).
- Unless --no-assess: `evaluator assess MODEL.onnx --samples N --json OUT --no-latency` with the default attacks, for
  the fp32 parent and each variant in --assess-precisions (default fp32, int8, int8-dynamic): clean accuracy on the
  attacked samples, the worst-case robust accuracy at the Linf budget nearest 8/255, the attacks that ran and where
  their gradients came from (a static int8 variant's from its own graph converted to torch, rounding straight-through;
  an int8-dynamic or fp16 variant's from its float parent's .pt2; every adversarial example is re-checked on the
  variant's own graph).

The header names the CPU (model name, the SIMD flags that matter to ONNX Runtime's int8 and fp16 kernels, VNNI yes/no),
the ONNX Runtime version and the threads. ORT's int8 convolutions gain most from VNNI (avx512_vnni, avx_vnni, amx_int8);
on AVX2 without it int8 may be no faster than float32, and fp16 is no faster on the CPU EP, which has few float16
kernels: it casts around the rest, or (ONNX Runtime 1.32) runs the whole graph in float32 on weights cast at load.
Failed `assess` checks (e.g. source-agrees: the float .pt2 that gives a variant's white-box gradients disagrees with
its graph too often) are listed under the table: a variant's robust accuracy above its parent's may be that gap, not
robustness.
On a shared machine absolute speeds move from run to run: read the ratios.
Writes --out (JSON) and the Markdown table beside it (.md), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ZOO_EPOCHS = 15
PARENTS = {  # name: (architecture, width); lenet5 is the committed zoo model, the others are trained on demand
    "lenet5": ("lenet5", 1.0),
    "resnet8": ("resnet8", 0.5),
    "vgg11": ("vgg11", 0.25),
    "resnet18": ("resnet18", 0.5),
    "mobilenetv2": ("mobilenetv2", 1.0),
}
DEFAULT_PARENTS = ("lenet5", "resnet8", "vgg11")
SUBSET_PARENTS = ("resnet18", "mobilenetv2")  # trained on a Fashion-MNIST subset (--subset): the whole set takes hours here
SUBSET_VALIDATION = 1000
PRECISIONS = ("int8", "int8-dynamic", "fp16")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "avx512_fp16", "f16c", "fma")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
LINF_8 = 8 / 255
INT8_KERNELS = {"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat",
                "DynamicQuantizeMatMul", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool",
                "QLinearConcat"}
FLOAT_KERNELS = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}


# ---------------------------------------------------------------------------------------------------- the machine


def cpu_description() -> dict[str, Any]:
    """Model name, the SIMD flags named in CPU_FLAGS that /proc/cpuinfo lists, and whether any VNNI flavour is there."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown"
    present = [flag for flag in CPU_FLAGS if flag in flags]
    return {"model": model, "flags": present, "absent": [flag for flag in CPU_FLAGS if flag not in flags],
            "vnni": any(flag in flags for flag in VNNI_FLAGS), "cores": os.cpu_count()}


# ---------------------------------------------------------------------------------------------------- steps


def run_step(args: list[str], label: str) -> dict[str, Any]:
    """Seconds, peak resident MiB and output of `python -m evaluator ARGS` in a child process; SystemExit on failure
    unless the caller asked to keep going (then the failure is returned)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    print(f"[{time.strftime('%H:%M:%S')}] {label}: evaluator {' '.join(args)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "evaluator", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    print(f"    {label}: {seconds:.1f} s, {usage.ru_maxrss / 1024:.0f} MiB, exit {code}", file=sys.stderr, flush=True)
    result = {"command": ["evaluator", *args], "seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024),
              "exit": code}
    if code != 0:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        result["error"] = lines[-1] if lines else f"exit {code}"
        result["output_tail"] = "\n".join(lines[-15:])
        print(f"    FAILED: {result['error']}", file=sys.stderr, flush=True)
    return result


def fashion_mnist_subset(work: Path, count: int) -> Path:
    """WORK/fmnist_<count>.npz: the first `count` Fashion-MNIST training images (SUBSET_VALIDATION of them held out
    for validation by `train`) and the whole test set, as uint8."""
    path = work / f"fmnist_{count}.npz"
    if not path.exists():
        import numpy as np

        from evaluator.datasets import load_dataset

        data = load_dataset("fashion-mnist")
        to_uint8 = lambda x: np.round(x[:, 0] * 255).astype(np.uint8)  # noqa: E731
        np.savez(path, x_train=to_uint8(data.train.x[:count]), y_train=data.train.y[:count], x_test=to_uint8(data.test.x),
                 y_test=data.test.y, classes=np.array(data.classes))
    return path


def parent_model(name: str, work: Path, epochs: int, threads: int, steps: list[dict[str, Any]],
                 subset: int = 10_000) -> Path | None:
    """WORK/<stem>.onnx of the named parent: the zoo LeNet-5 copied, or the others trained (reused when a card
    in WORK records the same epochs and seed): ResNet-8 / VGG-11 on Fashion-MNIST, ResNet-18 / MobileNetV2 on its
    first `subset` training images."""
    arch, width = PARENTS[name]
    stem = f"{name}_fmnist"
    target = work / f"{stem}.onnx"
    if name == "lenet5":
        for suffix in (".onnx", ".pt2", ".json"):
            source, copy = ROOT / "models" / f"{stem}{suffix}", work / f"{stem}{suffix}"
            if not copy.exists() or copy.read_bytes() != source.read_bytes():
                shutil.copyfile(source, copy)
        return target
    card = work / f"{stem}.json"
    if target.exists() and (work / f"{stem}.pt2").exists() and card.exists():
        training = json.loads(card.read_text())["metadata"].get("training") or {}
        if training.get("epochs") == epochs and training.get("seed") == 0:
            print(f"reusing {target} ({training.get('epochs_run')} of {epochs} epochs run)", file=sys.stderr)
            return target
    data = ["--dataset", "fashion-mnist"]
    if name in SUBSET_PARENTS:
        data = ["--dataset", str(fashion_mnist_subset(work, subset)), "--validation-size", str(SUBSET_VALIDATION)]
    step = run_step(["train", arch, *data, "--width", f"{width:g}", "--epochs", str(epochs),
                     "--patience", "3", "--seed", "0", "--name", stem, "--out", str(work), "--threads", str(threads)],
                    f"train {name}")
    steps.append({"step": f"train {name}", **step})
    return target if step["exit"] == 0 else None


def training_record(parent: Path) -> dict[str, Any]:
    card = json.loads(parent.with_suffix(".json").read_text())
    training = card["metadata"].get("training") or {}
    return {"epochs": training.get("epochs"), "epochs_run": training.get("epochs_run"),
            "best_epoch": training.get("best_epoch"), "test_accuracy": card.get("test_accuracy")}


def weight_bytes(path: Path) -> dict[str, Any]:
    """Bytes of the graph's initializers and Constant tensors (weights, biases, scales, zero points) by data type."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            tensors += [attr.t for attr in node.attribute if attr.type == onnx.AttributeProto.TENSOR]
    by_type: Counter[str] = Counter()
    for tensor in tensors:
        size = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize * math.prod(tensor.dims)
        by_type[onnx.TensorProto.DataType.Name(tensor.data_type).lower()] += size
    return {"bytes": sum(by_type.values()), "by_type": dict(by_type)}


def assessment_summary(report: Path) -> dict[str, Any]:
    """Clean accuracy on the attacked samples, the worst case at the Linf budget nearest 8/255, the attacks run."""
    model = json.loads(report.read_text())["models"][0]
    linf = [case for case in model["robustness"] if case["norm"].lower() == "linf"]
    worst = min(linf, key=lambda case: abs(case["epsilon"] - LINF_8)) if linf else None
    return {
        "clean_accuracy": model["clean_accuracy"],
        "attacked_samples": (model["samples"] or {}).get("count"),
        "attacked_clean_accuracy": (model["samples"] or {}).get("clean_accuracy"),
        "linf_epsilon": worst["epsilon"] if worst else None,
        "robust_accuracy_linf": worst["robust_accuracy"] if worst else None,
        "robust_accuracy_linf_ci": worst.get("robust_accuracy_ci") if worst else None,
        "attacks": [entry["name"] for entry in model["attacks"]],
        "attack_results": [{"name": entry["name"], "epsilon": entry["epsilon"], "robust_accuracy": entry["robust_accuracy"]}
                           for entry in model["attacks"]],
        "gradients": model.get("gradients"),
        "failed_checks": [f"{check['name']}: {check['detail']}" for check in model.get("checks", []) if not check["passed"]],
        "notes": model.get("notes", []),
    }


# ---------------------------------------------------------------------------------------------------- timing (child)


def optimised_ops(path: Path, threads: int) -> dict[str, Any]:
    """Operator census of the graph ONNX Runtime's CPU EP really runs (its optimised model, written to a temp file)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(folder) / "optimised.onnx")
        try:
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            graph = onnx.load(options.optimized_model_filepath).graph
        except Exception as error:  # serialising some optimised graphs is refused; the census is only a hint
            return {"error": str(error).splitlines()[0]}
    weight_types = {tensor.name: tensor.data_type for tensor in graph.initializer}
    ops = Counter(node.op_type for node in graph.node)
    float_kernels = [node for node in graph.node if node.op_type in FLOAT_KERNELS]
    fp16 = sum(weight_types.get(node.input[1] if len(node.input) > 1 else "") == onnx.TensorProto.FLOAT16
               for node in float_kernels)
    return {"int8_kernels": sum(n for op, n in ops.items() if op in INT8_KERNELS),
            "fp32_kernels": len(float_kernels) - fp16, "fp16_kernels": fp16, "casts": ops.get("Cast", 0),
            "quantize_linear": ops.get("QuantizeLinear", 0) + ops.get("DynamicQuantizeLinear", 0),
            "dequantize_linear": ops.get("DequantizeLinear", 0), "transposes": ops.get("Transpose", 0),
            "ops": dict(sorted(ops.items()))}


def unfused_accuracy(path: Path, threads: int) -> dict[str, Any] | None:
    """A static int8 (QDQ) graph's test accuracy with ONNX Runtime's graph optimisations off, so that every
    DequantizeLinear -> Conv runs in float32 on the quantized values (the quantization grid alone), beside its accuracy
    as ONNX Runtime runs it (QDQ pairs fused into int8 kernels); None for other graphs."""
    import numpy as np
    import onnxruntime as ort

    from evaluator.datasets import load_dataset, recorded_dataset
    from evaluator.precision import INT8, graph_precision
    from evaluator.runtime import OnnxClassifier

    model = OnnxClassifier(path, "cpu", threads=threads)
    if graph_precision(model.model) != INT8 or model.graph is not model.model or not (model.metadata or {}).get("dataset"):
        return None
    data = load_dataset(recorded_dataset(model.metadata["dataset"], path), test_only=True, input_shape=model.input_shape).test
    accuracy = {}
    for label, level in (("unfused", ort.GraphOptimizationLevel.ORT_DISABLE_ALL), ("fused", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run([model.output_name], {model.input_name: data.x[i:i + 256]})[0]
                                 for i in range(0, len(data), 256)])
        accuracy[label] = float((logits.argmax(1) == data.y).mean())
    return {"samples": len(data), **accuracy}


def time_models(paths: list[Path], threads: int, rounds: int, runs: int, runs1: int, warmup: int) -> dict[str, Any]:
    """Round-robin timing of the models in one process: per batch size, `rounds` rounds, each model `runs` timed runs
    per round (after `warmup` untimed runs each round); the order rotates by one model each round."""
    import numpy as np

    from evaluator.runtime import OnnxClassifier

    models = [OnnxClassifier(path, "cpu", threads=threads) for path in paths]
    results: dict[str, Any] = {str(path): {} for path in paths}
    for batch, count in ((256, runs), (1, runs1)):
        x = np.random.default_rng(0).random((batch, *models[0].input_shape), dtype=np.float32)
        times: list[list[list[float]]] = [[] for _ in models]  # model -> round -> seconds per run
        for model in models:
            for _ in range(warmup * 2):
                model.run_batch(x)
        for round_index in range(rounds):
            for i in [(i + round_index) % len(models) for i in range(len(models))]:
                for _ in range(warmup):
                    models[i].run_batch(x)
                runs_here = []
                for _ in range(count):
                    begin = time.perf_counter()
                    models[i].run_batch(x)
                    runs_here.append(time.perf_counter() - begin)
                times[i].append(runs_here)
        for path, model_times in zip(paths, times):
            median = statistics.median(t for round_times in model_times for t in round_times)
            results[str(path)][str(batch)] = {
                "runs": sum(map(len, model_times)), "median_ms": median * 1e3, "samples_per_s": batch / median,
                "round_medians_ms": [statistics.median(r) * 1e3 for r in model_times],
            }
    for path in paths:
        results[str(path)]["optimised_graph"] = optimised_ops(path, threads)
        results[str(path)]["int8_accuracy"] = unfused_accuracy(path, threads)
    return results


def timing_step(paths: list[Path], args: argparse.Namespace, work: Path, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run time_models in a child process (this script with --time-models); its results and the step record."""
    out = work / f"timing_{paths[0].stem}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--time-models", *map(str, paths), "--time-out", str(out),
               "--threads", str(args.threads), "--rounds", str(args.rounds), "--runs", str(args.runs),
               "--runs1", str(args.runs1), "--warmup", str(args.warmup)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    print(f"[{time.strftime('%H:%M:%S')}] {label}: {len(paths)} models side by side", file=sys.stderr, flush=True)
    start = time.perf_counter()
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    step = {"step": label, "command": ["bench/precision.py", *command[2:]], "seconds": round(seconds, 2),
            "exit": process.returncode}
    print(f"    {label}: {seconds:.1f} s, exit {process.returncode}", file=sys.stderr, flush=True)
    if process.returncode != 0:
        lines = [line for line in (process.stdout + process.stderr).strip().splitlines() if line.strip()]
        step["error"] = lines[-1] if lines else f"exit {process.returncode}"
        print(f"    FAILED: {step['error']}", file=sys.stderr, flush=True)
        return {}, step
    return json.loads(out.read_text()), step


def round_ratio_range(parent: dict[str, Any], variant: dict[str, Any]) -> list[float]:
    """[min, max] over the rounds of the speed ratio variant/parent (parent's round median time / variant's)."""
    ratios = [p / v for p, v in zip(parent["round_medians_ms"], variant["round_medians_ms"])]
    return [min(ratios), max(ratios)]


# ---------------------------------------------------------------------------------------------------- report


def fmt(value: Any, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
    cpu, setup = report["cpu"], report["setup"]
    lines = [
        f"CPU: {cpu['model']} ({cpu['cores']} cores); flags: {', '.join(cpu['flags']) or 'none'} "
        f"(absent: {', '.join(cpu['absent']) or 'none'}); VNNI: {'yes' if cpu['vnni'] else 'no'}; "
        f"ONNX Runtime {setup['onnxruntime']} CPU EP, {setup['threads']} thread(s); timing: {setup['rounds']} rounds "
        f"round-robin x {setup['runs']} runs at batch 256, x {setup['runs1']} runs at batch 1; "
        f"assess: {setup['samples'] if setup['assess'] else 'off'} samples, default attacks",
        "",
        "| model | precision | test acc | drop pts | agreement | bytes | size ratio | weight-bytes ratio | "
        "int8 acc unfused | samples/s @256 | vs fp32 [rounds] | p50 ms @1 | speed @1 vs fp32 | kernels run int8 / fp32 / fp16 / casts | "
        "attacked clean acc | robust Linf 8/255 worst |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in report["rows"]:
        ops = row.get("optimised_graph") or {}
        census = "-" if not ops or "error" in ops else (f"{ops['int8_kernels']} / {ops['fp32_kernels']} / "
                                                        f"{ops['fp16_kernels']} / {ops['casts']}")
        ratio256 = "-" if row.get("speed_ratio_256") is None else (
            f"{row['speed_ratio_256']:.2f}x [{row['speed_ratio_256_rounds'][0]:.2f}-{row['speed_ratio_256_rounds'][1]:.2f}]"
            if row["precision"] != "fp32" else "1")
        ratio1 = "-" if row.get("speed_ratio_1") is None else (f"{row['speed_ratio_1']:.2f}x" if row["precision"] != "fp32" else "1")
        attacked = row.get("assessment") or {}
        robust = attacked.get("robust_accuracy_linf")
        robust_text = "-" if robust is None else f"{robust:.3f}"
        if attacked.get("linf_epsilon") is not None and abs(attacked["linf_epsilon"] - LINF_8) > 1e-6:
            robust_text += f" (eps {attacked['linf_epsilon']:.4f})"
        if row.get("error"):
            lines.append(f"| {row['parent']} | {row['precision']} | failed: {row['error']} |" + " |" * 13)
            continue
        lines.append(
            f"| {row['parent']} | {row['precision']} | {fmt(row.get('test_accuracy'), '.4f')} | "
            f"{fmt(row.get('drop_points'), '.2f')} | {fmt(row.get('agreement'), '.4f')} | {fmt(row.get('bytes'), ',')} | "
            f"{fmt(row.get('size_ratio'), '.2f')}x | {fmt(row.get('weight_bytes_ratio'), '.2f')}x | "
            f"{fmt((row.get('int8_accuracy') or {}).get('unfused'), '.4f')} | "
            f"{fmt(row.get('samples_per_s_256'), ',.0f')} | {ratio256} | {fmt(row.get('p50_ms_1'), '.3f')} | {ratio1} | "
            f"{census} | {fmt(attacked.get('attacked_clean_accuracy'), '.3f')} | {robust_text} |")
    flagged = [f"- {row['parent']} {row['precision']}: {check}" for row in report["rows"]
               for check in (row.get("assessment") or {}).get("failed_checks", [])]
    if flagged:
        lines += ["", "Failed checks of `assess` (white-box gradients come from the float .pt2 source):", *flagged]
    lines += ["", "Training: " + "; ".join(
        f"{name}: {rec['epochs_run']} of {rec['epochs']} epochs run (best {rec['best_epoch']}), test acc {rec['test_accuracy']}"
        for name, rec in report["training"].items()), f"Wall time: {report['wall_seconds'] / 60:.1f} min"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/precision-bench"), help="scratch folder: parents, variants, reports")
    parser.add_argument("--epochs", type=int, default=ZOO_EPOCHS, help="most training epochs of ResNet-8 and VGG-11 (zoo: 15)")
    parser.add_argument("--parents", default=",".join(DEFAULT_PARENTS), help="comma-separated, of " + ", ".join(PARENTS))
    parser.add_argument("--subset", type=int, default=10_000,
                        help="Fashion-MNIST training images of ResNet-18 and MobileNetV2 (1,000 held out for validation)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model per round at batch 256")
    parser.add_argument("--runs1", type=int, default=200, help="timed runs per model per round at batch 1")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per model per round (twice that up front)")
    parser.add_argument("--samples", type=int, default=200, help="test samples attacked by assess")
    parser.add_argument("--assess", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--assess-precisions", default="fp32,int8,int8-dynamic")
    parser.add_argument("--out", type=Path, default=Path("/work/bench-precision.json"))
    parser.add_argument("--time-models", nargs="+", type=Path, help=argparse.SUPPRESS)  # the timing child
    parser.add_argument("--time-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_models:
        results = time_models(args.time_models, args.threads, args.rounds, args.runs, args.runs1, args.warmup)
        args.time_out.write_text(json.dumps(results, indent=2))
        return

    import onnxruntime

    started = time.perf_counter()
    parents = [name.strip() for name in args.parents.split(",") if name.strip()]
    precisions = [name.strip() for name in args.precisions.split(",") if name.strip()]
    assess_precisions = [name.strip() for name in args.assess_precisions.split(",") if name.strip()]
    unknown = [name for name in parents if name not in PARENTS] + [name for name in precisions if name not in PRECISIONS]
    if unknown:
        parser.error(f"unknown parent or precision: {', '.join(unknown)}")
    args.work.mkdir(parents=True, exist_ok=True)
    cpu = cpu_description()
    print(f"CPU {cpu['model']}: {', '.join(cpu['flags'])}; VNNI {'yes' if cpu['vnni'] else 'no'}; "
          f"onnxruntime {onnxruntime.__version__}", file=sys.stderr)
    steps: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    training: dict[str, Any] = {}
    threads = ["--threads", str(args.threads)]
    for name in parents:
        parent = parent_model(name, args.work, args.epochs, args.threads, steps, args.subset)
        if parent is None:
            rows.append({"parent": name, "precision": "fp32", "error": steps[-1].get("error")})
            continue
        training[name] = training_record(parent)
        parent_bytes, parent_weights = parent.stat().st_size, weight_bytes(parent)
        parent_row: dict[str, Any] = {"parent": name, "precision": "fp32", "file": str(parent), "bytes": parent_bytes,
                                      "weight_bytes": parent_weights["bytes"], "weight_bytes_by_type": parent_weights["by_type"],
                                      "size_ratio": 1.0, "weight_bytes_ratio": 1.0}
        group = [parent_row]
        for precision in precisions:
            variant = parent.with_name(f"{parent.stem}_{precision}.onnx")
            step = run_step(["quantize", str(parent), "--precision", precision, *threads], f"quantize {name} {precision}")
            steps.append({"step": f"quantize {name} {precision}", **step})
            row: dict[str, Any] = {"parent": name, "precision": precision, "file": str(variant),
                                   "quantize_seconds": step["seconds"], "quantize_peak_rss_mib": step["peak_rss_mib"]}
            if step["exit"] != 0:
                row["error"] = step["error"]
                group.append(row)
                continue
            check = json.loads(variant.with_suffix(".json").read_text())["precision_check"]
            weights = weight_bytes(variant)
            row.update({"test_accuracy": check["accuracy"], "parent_accuracy": check["parent_accuracy"],
                        "drop_points": 100 * check["accuracy_drop"], "agreement": check["top1_agreement"],
                        "max_abs_logit_diff": check["max_abs_logit_diff"], "check_samples": check["samples"],
                        "bytes": variant.stat().st_size, "size_ratio": parent_bytes / variant.stat().st_size,
                        "weight_bytes": weights["bytes"], "weight_bytes_by_type": weights["by_type"],
                        "weight_bytes_ratio": parent_weights["bytes"] / weights["bytes"]})
            parent_row.setdefault("test_accuracy", check["parent_accuracy"])
            group.append(row)
        parent_row.setdefault("test_accuracy", training[name]["test_accuracy"])
        parent_row.update({"drop_points": 0.0, "agreement": 1.0})
        timed = [row for row in group if not row.get("error")]
        timing, step = timing_step([Path(row["file"]) for row in timed], args, args.work, f"timing {name}")
        steps.append(step)
        if timing:
            base = timing[parent_row["file"]]
            for row in timed:
                mine = timing[row["file"]]
                row.update({
                    "samples_per_s_256": mine["256"]["samples_per_s"], "median_ms_256": mine["256"]["median_ms"],
                    "p50_ms_1": mine["1"]["median_ms"], "samples_per_s_1": mine["1"]["samples_per_s"],
                    "speed_ratio_256": base["256"]["median_ms"] / mine["256"]["median_ms"],
                    "speed_ratio_256_rounds": round_ratio_range(base["256"], mine["256"]),
                    "speed_ratio_1": base["1"]["median_ms"] / mine["1"]["median_ms"],
                    "speed_ratio_1_rounds": round_ratio_range(base["1"], mine["1"]),
                    "round_medians_ms_256": mine["256"]["round_medians_ms"], "round_medians_ms_1": mine["1"]["round_medians_ms"],
                    "optimised_graph": mine["optimised_graph"], "int8_accuracy": mine["int8_accuracy"],
                })
        if args.assess:
            for row in group:
                if row.get("error") or row["precision"] not in assess_precisions:
                    continue
                model = Path(row["file"])
                report = args.work / f"assess_{model.stem}.json"
                label = f"assess {name} {row['precision']}"
                step = run_step(["assess", str(model), "--samples", str(args.samples), "--json", str(report),
                                 "--no-latency", *threads], label)
                steps.append({"step": label, **step})
                row["assessment"] = assessment_summary(report) if step["exit"] == 0 else {"error": step["error"]}
        rows += group
    report = {
        "bench": "bench/precision.py",
        "cpu": cpu,
        "setup": {"onnxruntime": onnxruntime.__version__, "python": platform.python_version(), "threads": args.threads,
                  "rounds": args.rounds, "runs": args.runs, "runs1": args.runs1, "warmup": args.warmup,
                  "epochs": args.epochs, "samples": args.samples, "assess": args.assess,
                  "assess_precisions": assess_precisions, "work": str(args.work)},
        "training": training,
        "rows": rows,
        "steps": steps,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    table = markdown(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
