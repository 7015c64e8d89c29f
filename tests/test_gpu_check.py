"""bench/gpu_check.py on this machine: without CUDA every CUDA part says why it is skipped and the CPU parts pass; the
benches refuse CUDA they cannot have in one line, exit code 2."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from evaluator.runtime import CPU_EP, OnnxClassifier

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"
CUDA_SECTIONS = ("cuda_graph_logits", "stale_replay", "plain_cuda_fallback", "cpu_node_fallback", "assess_cuda",
                 "assess_comparison")
CPU_SECTIONS = ("versions", "cpu_logits", "dtype_refusal", "latency", "assess_cpu")


def gpu_check_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gpu_check") / "report.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--samples", "300", "--replays", "2",
                           "--latency-batches", "1,16", "--latency-seconds", "0.01", "--latency-runs", "5",
                           "--threads", "1", "--assess-samples", "20",
                           "--assess-attacks", "pgd-linf:steps=5,square-linf:queries=50"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_nothing_fails_and_every_section_has_a_status(report: dict) -> None:
    sections = report["sections"]
    assert set(CUDA_SECTIONS + CPU_SECTIONS) <= set(sections)
    assert report["summary"]["failed"] == []
    for name, section in sections.items():
        assert section["status"] == "ok" or section["status"].startswith("skipped: "), name


@pytest.mark.slow
def test_without_cuda_the_cuda_parts_are_skipped_with_a_reason(report: dict) -> None:
    if not report["cuda"].startswith("skipped: "):
        pytest.skip("CUDA is available here: the CUDA parts ran")
    reason = report["cuda"].removeprefix("skipped: ")
    assert reason
    for name in CUDA_SECTIONS:
        assert report["sections"][name]["status"].startswith("skipped: ") and len(report["sections"][name]["status"]) > 10
    paths = report["sections"]["dtype_refusal"]["paths"]
    assert paths["plain_cuda"]["status"].startswith("skipped: ") and paths["cuda_graph"]["status"].startswith("skipped: ")
    latency = report["sections"]["latency"]
    assert all(latency["paths"][mode]["status"].startswith("skipped: ") for mode in ("cuda_graph", "plain_cuda"))
    assert latency["gpu_memory"]["status"].startswith("skipped: ")


@pytest.mark.slow
def test_the_cpu_parts_pass(report: dict) -> None:
    sections = report["sections"]
    for name in CPU_SECTIONS:
        assert sections[name]["status"] == "ok", (name, sections[name])
    versions = sections["versions"]
    assert versions["python"] and versions["onnxruntime"]["version"]
    assert CPU_EP in versions["onnxruntime"]["available_providers"]
    assert isinstance(versions["cuda_libraries_after_preload"], list)
    logits = sections["cpu_logits"]
    assert logits["shape"] == [300, 10] and logits["finite"] and logits["runtime"]["used"] == CPU_EP
    cpu_refusal = sections["dtype_refusal"]["paths"]["cpu"]
    assert cpu_refusal["status"] == "ok"
    assert cpu_refusal["float64"].startswith("ok: EvaluatorError") and cpu_refusal["nhwc"].startswith("ok: EvaluatorError")
    timed = sections["latency"]["paths"]["cpu"]["by_batch"]
    assert set(timed) == {"1", "16"} and all(stats["p50_ms"] > 0 for stats in timed.values())
    assess = sections["assess_cpu"]
    assert assess["provider_fields"]["provider"] == CPU_EP
    assert 0 <= assess["clean_accuracy"] <= 1 and assess["robust"] and assess["attacks"]


def test_the_cpu_node_graph_loads_and_names_its_cpu_only_op(tmp_path: Path) -> None:
    gpu_check = gpu_check_module()
    path = gpu_check.cpu_node_graph((1, 28, 28), 10, tmp_path / "cpu_node.onnx")
    classifier = OnnxClassifier(path, "cpu", threads=1)
    logits = classifier.logits(np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32))
    assert logits.shape == (5, 10) and np.isfinite(logits).all()
    assert gpu_check.CPU_ONLY_OP in [node.op_type for node in classifier.model.graph.node]


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["bench/attack_speed.py", "--device", "cuda"],
    ["bench/prune_latency.py", "--provider", "cuda"],
], ids=["attack_speed-device", "prune_latency-provider"])
def test_benches_refuse_cuda_they_cannot_have_in_one_line(command: list[str]) -> None:
    import onnxruntime
    import torch

    if torch.cuda.is_available() or "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available here")
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cuda" in lines[0].lower()
    assert "Traceback" not in done.stderr
