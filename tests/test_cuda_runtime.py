"""The CUDA paths of the runtime on a machine without a GPU: the provider list, the sessions and the loader faked where
needed. What they pin: a report never says CUDA when a run used the CPU, a missing CUDA library is named, every path
refuses a batch it would misread, and the CUDA sessions get the GPU number and do not spin CPU threads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest

from evaluator.cuda_libraries import cuda_failure_reason, preload_cuda_libraries
from evaluator.errors import EvaluatorError
from evaluator.results import ModelAssessment, RuntimeChoice
from evaluator.runtime import CPU_EP, CUDA_EP, OnnxClassifier

from conftest import ZOO_PARENT

ONLY_CPU = pytest.mark.skipif("CUDAExecutionProvider" in onnxruntime.get_available_providers(),
                              reason="this machine has the CUDA EP: these tests fake its absence")


class SessionThatFallsBack:
    """A CPU session that says it runs on CUDA until its first run, then on the CPU: what ORT's Python API does when
    a CUDA run fails and fallback is enabled (it reruns on the CPU and moves the session there)."""

    def __init__(self, session: Any) -> None:
        self.session, self.providers = session, [CUDA_EP, CPU_EP]

    def run(self, *args: Any) -> Any:
        self.providers = [CPU_EP]
        return self.session.run(*args)

    def get_providers(self) -> list[str]:
        return self.providers


def on_faked_cuda(classifier: OnnxClassifier, cuda_graph: bool = False) -> OnnxClassifier:
    """The classifier as if its provider choice had put it on CUDA (plain, or with graphs)."""
    classifier.runtime = RuntimeChoice("cuda", CUDA_EP, cuda_graph=cuda_graph, device_id=0, device_name="Fake GPU")
    classifier._session = SessionThatFallsBack(classifier._new_session(CPU_EP))
    return classifier


def make_stub_library(folder: Path, name: str, needs: str | None = None) -> None:
    """A shared library `name` in `folder`, linked against `needs` (a library in `folder`) when given."""
    source = folder / "stub.c"
    source.write_text("int stub(void) { return 0; }\n")
    link = [f"-L{folder}", "-Wl,--no-as-needed", f"-l:{needs}", f"-Wl,-rpath,{folder}"] if needs else []
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{name}", "-o", str(folder / name), str(source), *link],
                   check=True, capture_output=True)


@pytest.fixture()
def provider_needing_cublas(tmp_path: Path) -> Path:
    """An onnxruntime package folder whose CUDA provider library needs libcublasLt.so.13, which is not there."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the stub libraries")
    capi = tmp_path / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    make_stub_library(capi, "libcublasLt.so.13")
    make_stub_library(capi, "libonnxruntime_providers_shared.so")
    make_stub_library(capi, "libonnxruntime_providers_cuda.so", needs="libcublasLt.so.13")
    (capi / "libcublasLt.so.13").unlink()
    return tmp_path / "onnxruntime" / "__init__.py"


def test_the_loader_names_the_missing_cuda_library(provider_needing_cublas: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "__file__", str(provider_needing_cublas))
    reason = cuda_failure_reason(onnxruntime)
    assert "a library it needs is missing" in reason and "libcublasLt.so.13" in reason


def test_an_onnxruntime_without_the_cuda_provider_library_says_install_onnxruntime_gpu(tmp_path: Path,
                                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "__file__", str(tmp_path / "onnxruntime" / "__init__.py"))
    assert "install onnxruntime-gpu" in cuda_failure_reason(onnxruntime)


@ONLY_CPU
def test_missing_cuda_libraries_are_named_in_the_note(provider_needing_cublas: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA EP listed but unable to start (ORT falls back to the CPU silently): the note says why, by name."""
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA_EP, CPU_EP])
    monkeypatch.setattr(onnxruntime, "__file__", str(provider_needing_cublas))
    classifier = OnnxClassifier(ZOO_PARENT, provider="cuda", device_id=1)
    assert classifier.runtime.used == CPU_EP and not classifier.runtime.cuda_graph
    note = classifier.runtime.note
    assert "could not start the CUDA EP on GPU 1" in note and "libcublasLt.so.13" in note and "fell back to CPU" in note


def test_preload_reports_what_onnx_runtime_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    def noisy_preload() -> None:
        print("\033[33mWARNING: Unable to parse CUDA version 'x'. Skipping DLL preloading.\033[0m")

    monkeypatch.setattr(onnxruntime, "preload_dlls", noisy_preload, raising=False)
    preload_cuda_libraries.cache_clear()
    try:
        assert preload_cuda_libraries() == "onnxruntime.preload_dlls(): WARNING: Unable to parse CUDA version 'x'. Skipping DLL preloading."
        monkeypatch.delattr(onnxruntime, "preload_dlls")
        preload_cuda_libraries.cache_clear()
        assert "has no preload_dlls()" in preload_cuda_libraries()
    finally:
        preload_cuda_libraries.cache_clear()


def test_a_run_time_fallback_is_reported_as_cpu() -> None:
    classifier = on_faked_cuda(OnnxClassifier(ZOO_PARENT, provider="cpu"))
    assert classifier.runtime.used == CUDA_EP
    logits = classifier.logits(np.zeros((3, 1, 28, 28), np.float32))
    assert logits.shape == (3, 10)
    assert classifier.runtime.used == CPU_EP and classifier.runtime.device_id is None
    assert "moved the session from the CUDA EP to the CPU during a run" in classifier.runtime.note


def test_an_assessment_whose_session_fell_back_reports_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON report of a model whose CUDA session moved to the CPU mid-assessment says CPU, with the note."""
    from typer.testing import CliRunner

    from evaluator.app.cli import app

    chosen = OnnxClassifier._choose_provider

    def choose_faked_cuda(self: OnnxClassifier, provider: str) -> RuntimeChoice:
        chosen(self, "cpu")
        self._session = SessionThatFallsBack(self._new_session(CPU_EP))
        return RuntimeChoice(provider, CUDA_EP, device_id=0, device_name="Fake GPU")

    monkeypatch.setattr(OnnxClassifier, "_choose_provider", choose_faked_cuda)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--provider", "cuda", "--samples", "8", "--no-latency",
                                      "--attacks", "square-linf:queries=20", "--threads", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    model = json.loads(out.read_text())["models"][0]
    assert model["provider"] == CPU_EP and model["provider_requested"] == "cuda" and model["device_id"] is None
    assert any("moved the session from the CUDA EP to the CPU" in note for note in model["notes"])
    assert model["torch_device"] is None  # no torch model was used
    gpu = {**model, "provider": CUDA_EP, "cuda_graph": True, "device_id": 2, "device_name": "NVIDIA H200",
           "torch_device": "cuda:0 (NVIDIA H200)"}
    back = ModelAssessment.from_dict(json.loads(json.dumps(gpu)))
    assert back.runtime == RuntimeChoice("cuda", CUDA_EP, True, "", 2, "NVIDIA H200")
    assert back.torch_device == "cuda:0 (NVIDIA H200)" and back.to_dict()["device_name"] == "NVIDIA H200"


def bad_batches() -> dict[str, np.ndarray]:
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    return {"float64": x.astype(np.float64), "NHWC": np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
            "no batch axis": x[0], "float16": x.astype(np.float16)}


@pytest.mark.parametrize("path", ["cpu", "plain cuda", "cuda graph"])
def test_every_path_refuses_a_batch_it_would_misread(path: str) -> None:
    classifier = OnnxClassifier(ZOO_PARENT, provider="cpu")
    if path != "cpu":
        on_faked_cuda(classifier, cuda_graph=path == "cuda graph")
        if path == "cuda graph":  # a bound buffer of the right element count: update_inplace would copy raw bytes
            classifier._bindings = {4: ("session", "binding", "input", "output")}
    for name, batch in bad_batches().items():
        with pytest.raises(EvaluatorError, match="graph takes float32|does not fit the model's input"):
            classifier.run_batch(batch)
    assert classifier.runtime.used == (CPU_EP if path == "cpu" else CUDA_EP)  # refused before any run


def test_logits_of_a_transposed_batch_are_refused() -> None:
    classifier = OnnxClassifier(ZOO_PARENT, provider="cpu")
    with pytest.raises(EvaluatorError, match="do not fit the model's input"):
        classifier.logits(bad_batches()["NHWC"])


class RecordingSessions:
    """onnxruntime.InferenceSession's stand-in: records the options and providers each session was made with."""

    def __init__(self) -> None:
        self.made: list[tuple[Any, Any]] = []
        self.fallback_disabled = 0

    def __call__(self, model: bytes, options: Any, providers: Any) -> Any:
        self.made.append((options, providers))
        recorder = self

        class Session:
            def get_providers(self) -> list[str]:
                return [CUDA_EP, CPU_EP]

            def disable_fallback(self) -> None:
                recorder.fallback_disabled += 1

        return Session()


def test_cuda_sessions_use_the_chosen_gpu_do_not_spin_and_never_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    classifier = OnnxClassifier(ZOO_PARENT, provider="cpu", threads=2, device_id=3)
    sessions = RecordingSessions()
    monkeypatch.setattr(classifier._ort, "InferenceSession", sessions)
    classifier._new_session(CUDA_EP, cuda_graph=True)
    options, providers = sessions.made[0]
    name, cuda_options = providers[0]
    assert name == CUDA_EP and cuda_options["device_id"] == "3" and cuda_options["enable_cuda_graph"] == "1"
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert sessions.fallback_disabled == 1


@pytest.mark.parametrize("device", [-1, 64, True, 1.5])
def test_a_gpu_number_out_of_range_is_refused(device: Any) -> None:
    with pytest.raises(EvaluatorError, match="device must be a GPU number") as error:
        OnnxClassifier(ZOO_PARENT, provider="cpu", device_id=device)
    assert error.value.field == "device"


def test_the_runtime_fields_are_in_the_json_entry() -> None:
    from test_policy import hand_model

    model = hand_model(runtime=RuntimeChoice("cuda", CUDA_EP, cuda_graph=True, device_id=2, device_name="NVIDIA H200"),
                       torch_device="cuda:0 (NVIDIA H200)")
    data = model.to_dict()
    assert (data["provider"], data["cuda_graph"], data["device_id"], data["device_name"], data["torch_device"]) == (
        CUDA_EP, True, 2, "NVIDIA H200", "cuda:0 (NVIDIA H200)")


@pytest.fixture()
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An nvidia-smi on PATH that lists four GPUs and names GPU N 'Fake GPU N' (the calls logged beside it)."""
    from evaluator.cuda_libraries import gpu_name, visible_gpu_count

    script = tmp_path / "nvidia-smi"
    script.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n'
                      'case "$1" in -L) for i in 0 1 2 3; do echo "GPU $i: Fake (UUID: GPU-$i)"; done ;;\n'
                      '*) for a in "$@"; do case "$a" in --id=*) echo "Fake GPU ${a#--id=}" ;; esac; done ;; esac\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    gpu_name.cache_clear()
    visible_gpu_count.cache_clear()
    yield script
    gpu_name.cache_clear()
    visible_gpu_count.cache_clear()


def test_the_gpu_name_follows_cuda_visible_devices(fake_nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluator.cuda_libraries import gpu_name, visible_gpu_count

    assert gpu_name(1) == "Fake GPU 1" and visible_gpu_count() == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,GPU-2")
    gpu_name.cache_clear()
    visible_gpu_count.cache_clear()
    assert gpu_name(0) == "Fake GPU 3" and gpu_name(1) == "Fake GPU GPU-2" and gpu_name(2) is None
    assert visible_gpu_count() == 2


@ONLY_CPU
def test_a_gpu_the_machine_does_not_have_is_refused(fake_nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA_EP, CPU_EP])
    with pytest.raises(EvaluatorError, match="device 4 names a GPU this machine does not have: CUDA sees 4") as error:
        OnnxClassifier(ZOO_PARENT, provider="cuda", device_id=4)
    assert error.value.field == "device"
