"""GPU verification of the evaluator's ONNX Runtime paths: one JSON of checks, each "ok", "failed" or "skipped: why".

    python bench/gpu_check.py [--model models/lenet5_fmnist.onnx] [--out FILE] [--samples 1000] [--device-id 0]
        [--threads N] [--replays 20] [--latency-batches 1,256] [--latency-seconds 1.0] [--latency-runs 100]
        [--assess-samples 100] [--assess-attacks LIST] [--clean-tolerance 0.001] [--robust-tolerance 0.03]
        [--no-assess] [--assess-timeout 1800]

The JSON (printed, or written to --out) holds "sections", each with its "status" and what it measured:

  versions             python, numpy, torch (its CUDA version, whether it sees a GPU, the GPU's name), onnxruntime
                       and its providers, whether onnxruntime.preload_dlls exists and what the evaluator's preload
                       (evaluator.runtime.preload_cuda_libraries) said, the CUDA and cuDNN libraries mapped into this
                       process (/proc/self/maps: libcudart, libcublas, libcublasLt, libcudnn*) after preloading and at
                       the end (after the CUDA sessions), and nvidia-smi's name, driver and memory of each GPU.
  cpu_logits           the classifier on ONNX Runtime's CPU EP over --samples inputs: the test split of --dataset
                       through the evaluator's loader (evaluator.datasets), or seeded uniform random images where it
                       cannot be loaded ("inputs" says which).
  cuda_graph_logits    the evaluator's OnnxClassifier with provider cuda: it must replay CUDA graphs, and its logits
                       must agree with the CPU's within the export tolerance (evaluator.agreement: max |logit diff| <=
                       1e-4 + 1e-4 x max |CPU logit|, and identical top-1). --samples not a multiple of the batch size
                       also runs the padded last batch.
  stale_replay         two different batches alternated --replays times through the CUDA-graph classifier: every
                       output must equal (bit for bit) the first output of its own input, agree with the CPU's logits
                       of that input and differ from the other batch's; the arrays returned first must be unchanged at
                       the end. A replay that reads a stale input buffer, or hands out its output buffer, fails.
  plain_cuda_fallback  a classifier whose CUDA-graph capture is made to fail (a subclass whose _run_cuda_graph raises,
                       as a failed capture does): it must step down to the plain CUDA EP, say why in its RuntimeChoice
                       note, and agree with the CPU.
  cpu_node_fallback    a graph made here (Flatten, MatMul, Celu) whose Celu has a CPU kernel and no CUDA one in ONNX
                       Runtime's operator table: CUDA graphs cannot capture a graph with a node on the CPU, so the
                       evaluator must fall to plain CUDA and say so; evaluator.placement lists where each kernel ran.
  dtype_refusal        a float64 batch and a transposed (NHWC) batch given to run_batch must raise EvaluatorError on
                       the CPU, plain CUDA and CUDA-graph paths (one batch of the classifier's batch size, so the
                       CUDA-graph path is offered its captured shape); each path must then still compute float32
                       batches right.
  latency              ONNX Runtime sessions built here with the evaluator's session options: CUDA graph (IOBinding,
                       replayed), plain CUDA (session.run) and CPU, each timed by evaluator.latency.measure_latency at
                       --latency-batches; GPU memory is nvidia-smi's memory.used of the GPU (the whole device, every
                       process on it: ONNX Runtime has no Python API for its CUDA arena's size) before this script's
                       first CUDA session and after the latency runs.
  assess_cpu           `evaluator assess MODEL --provider cpu --torch-device cpu --samples N --no-latency --json ...`
  assess_cuda          the same with --provider cuda --device ID --torch-device auto, each in a fresh process.
  assess_comparison    clean accuracy (within --clean-tolerance), each norm's and each attack's robust accuracy (within
                       --robust-tolerance), and the provider fields of both runs.

Without CUDA (an onnxruntime without the CUDA EP, or no GPU visible) every CUDA part is "skipped: why" and the CPU
parts run. Exit code 0 when nothing failed, 1 when a check failed, 2 for bad usage (a model that cannot be loaded).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from evaluator.agreement import logit_limit
from evaluator.datasets import load_dataset
from evaluator.errors import EvaluatorError, first_line
from evaluator.latency import measure_latency
from evaluator.runtime import CPU_EP, CUDA_EP, OnnxClassifier, import_onnxruntime, preload_cuda_libraries

ROOT = Path(__file__).resolve().parents[1]
OK, FAILED = "ok", "failed"
CUDA_LIBRARY = re.compile(r"^lib(cudart|cublas|cublasLt|cudnn\w*)\.so")
PROVIDER_FIELDS = ("provider", "provider_requested", "cuda_graph", "device_id", "device_name", "torch_device")
CPU_ONLY_OP = "Celu"  # in ONNX Runtime's kernel table for the CPU EP (float, opset 12+), not for the CUDA EP


def skipped(reason: str) -> str:
    return f"skipped: {reason}"


@dataclass
class Context:
    """What the sections share: options, the inputs, the CPU classifier and its logits, and the CUDA classifiers once
    made. cuda_skip: why the CUDA parts are skipped (None: they run)."""

    args: argparse.Namespace
    cpu: OnnxClassifier
    x: np.ndarray
    y: np.ndarray | None
    inputs: str
    cuda_skip: str | None
    work: Path
    cpu_logits: np.ndarray | None = None
    cuda: OnnxClassifier | None = None
    plain: OnnxClassifier | None = None
    memory_before: float | None = None


# --- helpers -----------------------------------------------------------------------------------------------------

def loaded_cuda_libraries() -> list[str]:
    """Paths of the CUDA runtime, cuBLAS(Lt) and cuDNN libraries mapped into this process (Linux /proc/self/maps)."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return []
    paths = {line.split()[-1] for line in maps.read_text().splitlines() if len(line.split()) >= 6}
    return sorted(path for path in paths if CUDA_LIBRARY.match(Path(path).name))


def nvidia_smi(query: str, device_id: int | None = None) -> list[list[str]] | str:
    """nvidia-smi --query-gpu=QUERY as rows of fields, or why there are none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "nvidia-smi not found"
    command = [smi, f"--query-gpu={query}", "--format=csv,noheader,nounits"]
    if device_id is not None:
        command.append(f"--id={device_id}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        return f"nvidia-smi failed: {first_line(error)}"
    if done.returncode != 0:
        return f"nvidia-smi exited {done.returncode}: {(done.stdout + done.stderr).strip()[:200]}"
    return [[part.strip() for part in line.split(",")] for line in done.stdout.strip().splitlines() if line.strip()]


def gpu_memory_used_mib(device_id: int) -> float | None:
    rows = nvidia_smi("memory.used", device_id)
    try:
        return float(rows[0][0]) if isinstance(rows, list) and rows else None
    except ValueError:
        return None


def torch_sees_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def why_no_cuda(ort: Any) -> str | None:
    """Why the CUDA parts cannot run here (None: they run): no CUDA EP in this onnxruntime, or no GPU visible to
    nvidia-smi or torch. A GPU that is visible but unusable is a failure of the checks, not a reason to skip them."""
    providers = ort.get_available_providers()
    if CUDA_EP not in providers:
        return f"onnxruntime {ort.__version__} has no {CUDA_EP} (available: {', '.join(providers)})"
    gpus = nvidia_smi("name")
    if not isinstance(gpus, list) and not torch_sees_gpu():
        return f"onnxruntime has the {CUDA_EP} but no GPU is visible (nvidia-smi: {gpus}; torch sees none)"
    return None


def agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Max |logit diff| against the export tolerance (evaluator.agreement.logit_limit), and the top-1 agreement."""
    diff = float(np.abs(reference - other).max())
    limit = logit_limit(float(np.abs(reference).max()))
    top1 = float((reference.argmax(1) == other.argmax(1)).mean())
    return {"max_abs_diff": diff, "limit": limit, "top1_agreement": top1, "within_tolerance": diff <= limit and top1 == 1.0}


def runtime_fields(classifier: OnnxClassifier) -> dict[str, Any]:
    return dataclasses.asdict(classifier.runtime)


def load_inputs(shape: tuple[int, int, int], samples: int, dataset: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The first `samples` test images of `dataset` with their labels, or seeded uniform random images (no labels)
    where the dataset cannot be loaded or does not fit the model; the third item says which."""
    try:
        test = load_dataset(dataset, test_only=True, input_shape=shape).test
        if tuple(test.x.shape[1:]) != shape:
            raise EvaluatorError(f"its images are {tuple(test.x.shape[1:])}, the model takes {shape}")
        count = min(samples, len(test.x))
        return test.x[:count], test.y[:count], f"{dataset} test split, first {count} images (evaluator.datasets)"
    except EvaluatorError as error:
        x = np.random.default_rng(0).random((samples, *shape), dtype=np.float32)
        return x, None, f"seeded uniform random images in [0, 1] (seed 0): {dataset} not usable ({error})"


class GraphCaptureRefused(OnnxClassifier):
    """The evaluator's classifier with every CUDA-graph capture failing, as a graph CUDA graphs cannot hold makes it
    fail: what is left is its plain CUDA path."""

    def _run_cuda_graph(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("CUDA-graph capture refused by bench/gpu_check.py")


def cpu_node_graph(shape: tuple[int, int, int], classes: int, path: Path) -> Path:
    """Write a small classifier x (N, C, H, W) -> Celu(Flatten(x) @ W) (N, classes) to `path`: Celu has a CPU kernel
    and no CUDA one, so a CUDA session puts that node on the CPU."""
    values = int(np.prod(shape))
    weight = np.random.default_rng(0).normal(0.0, 1.0 / np.sqrt(values), (values, classes)).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weight"], ["hidden"]),
             helper.make_node(CPU_ONLY_OP, ["hidden"], ["logits"], alpha=1.0)]
    graph = helper.make_graph(nodes, "cpu_node", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
                              [numpy_helper.from_array(weight, "weight")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class SessionRunner:
    """run_batch over ONNX Runtime sessions built as the evaluator builds them: 'cpu' and 'plain_cuda' with
    session.run, 'cuda_graph' replayed through IOBinding on device buffers (one session per batch shape). The logits
    come back on the host, so a timed call has finished its GPU work."""

    def __init__(self, mode: str, classifier: OnnxClassifier, device_id: int, threads: int | None) -> None:
        self.mode = mode
        self.ort = import_onnxruntime()
        self.serialized = classifier.graph.SerializeToString()
        self.input_name, self.output_name = classifier.input_name, classifier.output_name
        self.input_shape, self.fixed_batch = classifier.input_shape, classifier.fixed_batch
        self.classes, self.output_type = classifier.num_classes, classifier.output_type
        self.device_id, self.threads = device_id, threads
        self.session = None if mode == "cuda_graph" else self.new_session()
        self.bound: dict[int, tuple[Any, Any, Any, Any]] = {}

    def new_session(self) -> Any:
        options = self.ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.use_deterministic_compute = True
        if self.threads:
            options.intra_op_num_threads = self.threads
        if self.mode == "cpu":
            return self.ort.InferenceSession(self.serialized, options, providers=[CPU_EP])
        cuda = {"device_id": str(self.device_id), "enable_cuda_graph": "1" if self.mode == "cuda_graph" else "0",
                "cudnn_conv_algo_search": "HEURISTIC"}
        session = self.ort.InferenceSession(self.serialized, options, providers=[(CUDA_EP, cuda), CPU_EP])
        if session.get_providers()[0] != CUDA_EP:
            raise RuntimeError(f"the {self.mode} session started on {session.get_providers()[0]}, not CUDA")
        session.disable_fallback()  # a CUDA error raises rather than rerunning on the CPU under a CUDA label
        return session

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        if self.mode != "cuda_graph":
            return self.session.run([self.output_name], {self.input_name: x})[0]  # type: ignore[union-attr]
        batch = x.shape[0]
        if batch not in self.bound:
            session = self.new_session()
            device_input = self.ort.OrtValue.ortvalue_from_numpy(np.zeros(x.shape, np.float32), "cuda", self.device_id)
            device_output = self.ort.OrtValue.ortvalue_from_shape_and_type([batch, self.classes], self.output_type,
                                                                           "cuda", self.device_id)
            binding = session.io_binding()
            binding.bind_ortvalue_input(self.input_name, device_input)
            binding.bind_ortvalue_output(self.output_name, device_output)
            self.bound[batch] = (session, binding, device_input, device_output)
        session, binding, device_input, device_output = self.bound[batch]
        device_input.update_inplace(np.ascontiguousarray(x, dtype=np.float32))
        session.run_with_iobinding(binding)
        return device_output.numpy()


# --- sections ----------------------------------------------------------------------------------------------------

def versions(ctx: Context) -> dict[str, Any]:
    ort = import_onnxruntime()
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(), "numpy": np.__version__}
    try:
        import torch

        available = bool(torch.cuda.is_available())
        info["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": available,
                         "device_count": torch.cuda.device_count() if available else 0,
                         "device_name": torch.cuda.get_device_name(ctx.args.device_id) if available else None}
    except ImportError:
        info["torch"] = "not installed"
    info["onnxruntime"] = {"version": ort.__version__, "available_providers": ort.get_available_providers(),
                           "preload_dlls_exists": hasattr(ort, "preload_dlls"),
                           "evaluator_preload_note": preload_cuda_libraries()}
    info["cuda_libraries_after_preload"] = loaded_cuda_libraries()
    smi = nvidia_smi("name,driver_version,memory.total")
    info["nvidia_smi"] = [dict(zip(("name", "driver_version", "memory_total_mib"), row)) for row in smi] \
        if isinstance(smi, list) else smi
    return {"status": OK, **info}


def cpu_logits(ctx: Context) -> dict[str, Any]:
    ctx.cpu_logits = logits = ctx.cpu.logits(ctx.x)
    result = {"inputs": ctx.inputs, "samples": len(ctx.x), "runtime": runtime_fields(ctx.cpu),
              "shape": list(logits.shape), "finite": bool(np.isfinite(logits).all())}
    if ctx.y is not None:
        result["accuracy"] = float((logits.argmax(1) == ctx.y).mean())
    good = result["finite"] and logits.shape == (len(ctx.x), ctx.cpu.num_classes)
    return {"status": OK if good else FAILED, **result}


def reference_logits(ctx: Context) -> np.ndarray:
    if ctx.cpu_logits is None:
        raise RuntimeError("the CPU logits are missing (cpu_logits failed)")
    return ctx.cpu_logits


def cuda_graph_logits(ctx: Context) -> dict[str, Any]:
    if ctx.cuda_skip:
        return {"status": skipped(ctx.cuda_skip)}
    reference = reference_logits(ctx)
    ctx.cuda = OnnxClassifier(ctx.args.model, "cuda", threads=ctx.args.threads, device_id=ctx.args.device_id)
    runtime = runtime_fields(ctx.cuda)
    if ctx.cuda.runtime.used != CUDA_EP or not ctx.cuda.runtime.cuda_graph:
        return {"status": FAILED, "runtime": runtime, "reason": "the CUDA classifier does not replay CUDA graphs"}
    compared = agreement(reference, ctx.cuda.logits(ctx.x))
    return {"status": OK if compared["within_tolerance"] else FAILED, "runtime": runtime, "samples": len(ctx.x),
            "batch_size": ctx.cuda.batch_size, **compared}


def stale_replay(ctx: Context) -> dict[str, Any]:
    if ctx.cuda_skip:
        return {"status": skipped(ctx.cuda_skip)}
    if ctx.cuda is None or not ctx.cuda.runtime.cuda_graph:
        return {"status": FAILED, "reason": "no CUDA-graph classifier (see cuda_graph_logits)"}
    rng = np.random.default_rng(1)
    batches = {name: rng.random((ctx.cuda.batch_size, *ctx.cuda.input_shape), dtype=np.float32) for name in "ab"}
    expected = {name: ctx.cpu.run_batch(batch) for name, batch in batches.items()}
    first: dict[str, np.ndarray] = {}
    handed_out: list[tuple[str, np.ndarray]] = []  # arrays as run_batch returned them, checked again at the end
    mismatches: list[str] = []
    for replay in range(ctx.args.replays):
        for name, batch in batches.items():
            out = ctx.cuda.run_batch(batch)
            if name not in first:
                first[name] = out.copy()
                handed_out.append((name, out))
            elif not np.array_equal(out, first[name]):
                mismatches.append(f"replay {replay}, batch {name}: max diff {float(np.abs(out - first[name]).max()):.3g}")
    changed = [name for name, out in handed_out if not np.array_equal(out, first[name])]
    compared = {name: agreement(expected[name], first[name]) for name in batches}
    same = bool(np.array_equal(first["a"], first["b"]))
    good = not mismatches and not changed and not same and all(c["within_tolerance"] for c in compared.values())
    return {"status": OK if good else FAILED, "replays": ctx.args.replays, "batch_size": ctx.cuda.batch_size,
            "mismatches": mismatches[:5], "mismatch_count": len(mismatches), "returned_arrays_changed_later": changed,
            "outputs_of_a_and_b_equal": same, "against_cpu": compared}


def plain_cuda_fallback(ctx: Context) -> dict[str, Any]:
    if ctx.cuda_skip:
        return {"status": skipped(ctx.cuda_skip)}
    reference = reference_logits(ctx)
    ctx.plain = GraphCaptureRefused(ctx.args.model, "cuda", threads=ctx.args.threads, device_id=ctx.args.device_id)
    runtime = runtime_fields(ctx.plain)
    how = "OnnxClassifier subclass whose _run_cuda_graph raises (every CUDA-graph capture fails)"
    if ctx.plain.runtime.used != CUDA_EP or ctx.plain.runtime.cuda_graph:
        return {"status": FAILED, "how": how, "runtime": runtime, "reason": "did not step down to plain CUDA"}
    compared = agreement(reference, ctx.plain.logits(ctx.x))
    good = compared["within_tolerance"] and bool(ctx.plain.runtime.note)
    return {"status": OK if good else FAILED, "how": how, "runtime": runtime, "note": ctx.plain.runtime.note, **compared}


def cpu_node_fallback(ctx: Context) -> dict[str, Any]:
    if ctx.cuda_skip:
        return {"status": skipped(ctx.cuda_skip)}
    from evaluator.placement import node_placement

    path = cpu_node_graph(ctx.cpu.input_shape, ctx.cpu.num_classes, ctx.work / "cpu_node.onnx")
    reference = OnnxClassifier(path, "cpu", threads=ctx.args.threads).logits(ctx.x)
    classifier = OnnxClassifier(path, "cuda", threads=ctx.args.threads, device_id=ctx.args.device_id)
    placement = node_placement(classifier.graph, CUDA_EP, "fp32", ctx.x[:classifier.batch_size],
                               ctx.args.threads or 1, provider_options={"device_id": str(ctx.args.device_id)})
    on_cpu = [f"{kernel.node} ({kernel.op})" for kernel in placement.kernels if kernel.provider == CPU_EP]
    result: dict[str, Any] = {"graph": f"Flatten -> MatMul -> {CPU_ONLY_OP}", "runtime": runtime_fields(classifier),
                              "note": classifier.runtime.note, "kernels_on_cpu": on_cpu,
                              "placement": placement.summary()}
    if not any(CPU_ONLY_OP in kernel for kernel in on_cpu):
        return {"status": skipped(f"this ONNX Runtime ran {CPU_ONLY_OP} on CUDA: the graph has no CPU node"), **result}
    compared = agreement(reference, classifier.logits(ctx.x))
    good = (classifier.runtime.used == CUDA_EP and not classifier.runtime.cuda_graph and bool(classifier.runtime.note)
            and compared["within_tolerance"])
    return {"status": OK if good else FAILED, **result, **compared}


def refusal(classifier: OnnxClassifier, batch: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
    """run_batch on a float64 and an NHWC copy of `batch` must raise EvaluatorError; then `batch` itself must still
    give the expected logits."""
    cases = {"float64": batch.astype(np.float64), "nhwc": batch.transpose(0, 2, 3, 1)}
    result: dict[str, Any] = {}
    for kind, wrong in cases.items():
        try:
            out = classifier.run_batch(wrong)
            result[kind] = f"{FAILED}: returned logits of shape {tuple(np.shape(out))} instead of raising"
        except EvaluatorError as error:
            result[kind] = f"{OK}: EvaluatorError: {error}"
        except Exception as error:  # the refusal must be the evaluator's one-line error, nothing else
            result[kind] = f"{FAILED}: raised {type(error).__name__} ({first_line(error)}), not EvaluatorError"
    result["float32_after"] = agreement(expected, classifier.run_batch(batch))
    good = all(value.startswith(OK) for key, value in result.items() if key in cases) \
        and result["float32_after"]["within_tolerance"]
    return {"status": OK if good else FAILED, **result}


def dtype_refusal(ctx: Context) -> dict[str, Any]:
    size = ctx.cuda.batch_size if ctx.cuda is not None else ctx.cpu.batch_size
    batch = np.random.default_rng(2).random((size, *ctx.cpu.input_shape), dtype=np.float32)
    expected = ctx.cpu.run_batch(batch)
    paths: dict[str, dict[str, Any]] = {"cpu": refusal(ctx.cpu, batch, expected)}
    for name, classifier, wanted in (("plain_cuda", ctx.plain, False), ("cuda_graph", ctx.cuda, True)):
        if ctx.cuda_skip:
            paths[name] = {"status": skipped(ctx.cuda_skip)}
        elif classifier is None or classifier.runtime.used != CUDA_EP or classifier.runtime.cuda_graph != wanted:
            paths[name] = {"status": FAILED, "reason": f"no {name} classifier (see its section)"}
        else:
            paths[name] = refusal(classifier, batch, expected)
    failed = any(path["status"] == FAILED for path in paths.values())
    return {"status": FAILED if failed else OK, "batch_size": size, "paths": paths}


def latency(ctx: Context) -> dict[str, Any]:
    batches = [int(b) for b in ctx.args.latency_batches.split(",")]
    rows: dict[str, dict[str, Any]] = {}
    for mode in ("cuda_graph", "plain_cuda", "cpu"):
        if mode != "cpu" and ctx.cuda_skip:
            rows[mode] = {"status": skipped(ctx.cuda_skip)}
            continue
        try:
            runner = SessionRunner(mode, ctx.cpu, ctx.args.device_id, ctx.args.threads)
            timed = {str(batch): measure_latency(cast(OnnxClassifier, runner), batch, min_runs=ctx.args.latency_runs,
                                                 min_seconds=ctx.args.latency_seconds).to_dict() for batch in batches}
            rows[mode] = {"status": OK, "by_batch": timed}
        except Exception as error:  # ORT's own error types
            rows[mode] = {"status": FAILED, "error": f"{type(error).__name__}: {first_line(error)}"}
    memory: dict[str, Any] = {"status": skipped(ctx.cuda_skip)} if ctx.cuda_skip else {
        "method": f"nvidia-smi memory.used of GPU {ctx.args.device_id} in MiB: the whole device, every process on it",
        "before_first_cuda_session_mib": ctx.memory_before,
        "after_latency_mib": gpu_memory_used_mib(ctx.args.device_id)}
    graph_vs_plain = compare_batch_1(rows)
    failed = any(row["status"] == FAILED for row in rows.values()) or graph_vs_plain["status"] == FAILED
    return {"status": FAILED if failed else OK, "timer": "evaluator.latency.measure_latency (time.perf_counter per run)",
            "sessions": "built here with the evaluator's session options", "paths": rows,
            "cuda_graph_vs_plain_cuda_batch_1": graph_vs_plain, "gpu_memory": memory}


def compare_batch_1(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """CUDA graphs exist to cut the per-run launch cost: at batch 1 their p50 must be below plain CUDA's."""
    graph, plain = (rows[mode].get("by_batch", {}).get("1") for mode in ("cuda_graph", "plain_cuda"))
    if graph is None or plain is None:
        return {"status": skipped("needs batch 1 timed on CUDA graphs and on plain CUDA")}
    ratio = plain["p50_ms"] / graph["p50_ms"]
    return {"status": OK if ratio > 1 else FAILED, "cuda_graph_p50_ms": graph["p50_ms"], "plain_cuda_p50_ms": plain["p50_ms"],
            "plain_over_graph": round(ratio, 3)}


def assess_run(ctx: Context, provider: str) -> dict[str, Any]:
    """`evaluator assess` in a fresh process on `provider`: its clean and robust accuracies and provider fields."""
    out = ctx.work / f"assess_{provider}.json"
    command = [sys.executable, "-m", "evaluator", "assess", str(ctx.args.model), "--provider", provider,
               "--samples", str(ctx.args.assess_samples), "--no-latency", "--json", str(out),
               "--torch-device", "cpu" if provider == "cpu" else "auto"]
    if provider == "cuda":
        command += ["--device", str(ctx.args.device_id)]
    if ctx.args.threads:
        command += ["--threads", str(ctx.args.threads)]
    if ctx.args.assess_attacks:
        command += ["--attacks", ctx.args.assess_attacks]
    if ctx.y is None:  # no dataset here: the same random images, labelled with the CPU graph's own predictions
        data = ctx.work / "inputs.npz"
        np.savez(data, x=ctx.x, y=reference_logits(ctx).argmax(1))
        command += ["--dataset", str(data)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=ctx.args.assess_timeout, cwd=ROOT, check=False)
    result: dict[str, Any] = {"command": shlex.join(command), "seconds": round(time.perf_counter() - start, 1),
                              "exit_code": done.returncode}
    if done.returncode != 0 or not out.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        return {"status": FAILED, **result, "output_tail": tail}
    model = json.loads(out.read_text())["models"][0]
    result.update({
        "clean_accuracy": model["clean_accuracy"], "clean_samples": model["clean_samples"],
        "attacked_clean_accuracy": (model.get("samples") or {}).get("clean_accuracy"),
        "robust": {f"{w['norm']} {w['epsilon']:g}": w["robust_accuracy"] for w in model["robustness"]},
        "attacks": {f"{a['name']} {a['norm']} {a['epsilon']:g}": a["robust_accuracy"] for a in model["attacks"]},
        "provider_fields": {name: model.get(name) for name in PROVIDER_FIELDS}, "notes": model.get("notes", [])})
    wanted = CPU_EP if provider == "cpu" else CUDA_EP
    good = model.get("provider") == wanted
    return {"status": OK if good else FAILED, **result, **({} if good else {"reason": f"provider is not {wanted}"})}


def assess_comparison(cpu: dict[str, Any], cuda: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if not cuda["status"] == cpu["status"] == OK:
        reason = cuda["status"] if cuda["status"].startswith("skipped") else skipped("an assess run did not finish ok")
        return {"status": reason}
    clean = abs(cpu["clean_accuracy"] - cuda["clean_accuracy"])
    differences = {key: abs(cpu[part][key] - cuda[part][key]) if key in cuda[part] else None
                   for part in ("robust", "attacks") for key in cpu[part]}
    missing = sorted(set(cuda["robust"]) ^ set(cpu["robust"]) | set(cuda["attacks"]) ^ set(cpu["attacks"]))
    good = clean <= args.clean_tolerance and not missing and \
        all(d is not None and d <= args.robust_tolerance for d in differences.values())
    return {"status": OK if good else FAILED, "clean_accuracy_difference": clean, "clean_tolerance": args.clean_tolerance,
            "robust_accuracy_differences": differences, "robust_tolerance": args.robust_tolerance,
            "results_in_one_run_only": missing,
            "provider_fields": {"cpu": cpu["provider_fields"], "cuda": cuda["provider_fields"]}}


# --- main --------------------------------------------------------------------------------------------------------

def run_section(name: str, sections: dict[str, dict[str, Any]], check: Callable[[], dict[str, Any]]) -> None:
    """Run one check; an exception is that section's failure (with its last frames), never the script's end."""
    try:
        sections[name] = check()
    except Exception as error:  # any failure of a check is recorded, the others still run
        sections[name] = {"status": FAILED, "error": f"{type(error).__name__}: {first_line(error)}",
                          "where": traceback.format_exc().strip().splitlines()[-3:]}
    print(f"{name}: {sections[name]['status']}", file=sys.stderr)


def check_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    ort = import_onnxruntime()
    cpu = OnnxClassifier(args.model, "cpu", threads=args.threads)
    x, y, inputs = load_inputs(cpu.input_shape, args.samples, args.dataset)
    ctx = Context(args, cpu, x, y, inputs, why_no_cuda(ort), work)
    sections: dict[str, dict[str, Any]] = {}
    run_section("versions", sections, lambda: versions(ctx))
    if not ctx.cuda_skip:
        ctx.memory_before = gpu_memory_used_mib(args.device_id)  # before this script's first CUDA session
    for name, check in (("cpu_logits", cpu_logits), ("cuda_graph_logits", cuda_graph_logits),
                        ("stale_replay", stale_replay), ("plain_cuda_fallback", plain_cuda_fallback),
                        ("cpu_node_fallback", cpu_node_fallback), ("dtype_refusal", dtype_refusal),
                        ("latency", latency)):
        run_section(name, sections, lambda check=check: check(ctx))  # type: ignore[misc]
    sections["versions"]["cuda_libraries_at_end"] = loaded_cuda_libraries()
    if args.no_assess:
        for name in ("assess_cpu", "assess_cuda", "assess_comparison"):
            sections[name] = {"status": skipped("--no-assess")}
    else:
        run_section("assess_cpu", sections, lambda: assess_run(ctx, "cpu"))
        run_section("assess_cuda", sections, lambda: {"status": skipped(ctx.cuda_skip)} if ctx.cuda_skip
                    else assess_run(ctx, "cuda"))
        run_section("assess_comparison", sections,
                    lambda: assess_comparison(sections["assess_cpu"], sections["assess_cuda"], args))
    statuses = {name: section["status"] for name, section in sections.items()}
    return {"script": "bench/gpu_check.py", "model": str(args.model), "device_id": args.device_id,
            "cuda": "available" if ctx.cuda_skip is None else skipped(ctx.cuda_skip),
            "summary": {"ok": [n for n, s in statuses.items() if s == OK],
                        "failed": [n for n, s in statuses.items() if s == FAILED],
                        "skipped": [n for n, s in statuses.items() if s.startswith("skipped")]},
            "sections": sections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/lenet5_fmnist.onnx")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: print it)")
    parser.add_argument("--dataset", default="fashion-mnist", help="test images for the logit checks")
    parser.add_argument("--samples", type=int, default=1000, help="inputs of the logit checks")
    parser.add_argument("--device-id", type=int, default=0, help="the GPU ONNX Runtime runs on")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime CPU threads (default: one per core)")
    parser.add_argument("--replays", type=int, default=20, help="alternations of the stale-replay check")
    parser.add_argument("--latency-batches", default="1,256")
    parser.add_argument("--latency-seconds", type=float, default=1.0, help="least time per latency measurement")
    parser.add_argument("--latency-runs", type=int, default=100, help="least runs per latency measurement")
    parser.add_argument("--assess-samples", type=int, default=100)
    parser.add_argument("--assess-attacks", default=None, help="evaluator assess --attacks (default: its default cascade)")
    parser.add_argument("--assess-timeout", type=float, default=1800.0, help="seconds per assess run")
    parser.add_argument("--clean-tolerance", type=float, default=0.001, help="clean accuracy, CPU against CUDA")
    parser.add_argument("--robust-tolerance", type=float, default=0.03, help="each robust accuracy, CPU against CUDA")
    parser.add_argument("--no-assess", action="store_true", help="skip the two evaluator assess runs")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as folder:
            report = check_all(args, Path(folder))
    except EvaluatorError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    text = json.dumps(report, indent=2, default=str)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n")
    raise SystemExit(1 if report["summary"]["failed"] else 0)


if __name__ == "__main__":
    main()
