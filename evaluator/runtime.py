"""ONNX Runtime behind one class: provider choice, fixed-shape batches, CUDA graphs, query counting."""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from evaluator.errors import EvaluatorError, first_line
from evaluator.limits import MAX_INPUT_VALUES, MAX_THREADS, check_batch, check_device
from evaluator.cuda_libraries import cuda_failure_reason, gpu_name, preload_cuda_libraries, visible_gpu_count
from evaluator.input_options import InputOverrides
from evaluator.graph_input import adapt, image_input, input_dims, resolve_input
from evaluator.metadata import read_metadata
from evaluator.threads import available_cores
from evaluator.results import RuntimeChoice

Provider = Literal["auto", "cpu", "cuda"]
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
MAX_ONNX_BYTES = (2 << 30) - 1  # protobuf's limit on one message: larger weights live in external data files

# Output element types taken as logits, as numpy dtypes; logits() returns float32. ONNX Runtime's Python API
# cannot return bfloat16.
LOGIT_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise EvaluatorError(
            "ONNX Runtime is not installed: pip install 'evaluator[cpu]' (or 'evaluator[gpu]' on a CUDA machine)"
        ) from None
    return onnxruntime


def load_onnx(path: Path) -> onnx.ModelProto:
    """Read and check an ONNX file; any problem becomes one EvaluatorError line."""
    path = Path(path)
    if not path.is_file():
        raise EvaluatorError(f"model file not found: {path}")
    if path.stat().st_size > MAX_ONNX_BYTES:
        raise EvaluatorError(f"{path} is not a valid ONNX model: it has {path.stat().st_size:,} bytes, over the 2 GiB a "
                             "protobuf can hold (large weights belong in external data files)")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises DecodeError, ValidationError, ... for a corrupt file
        raise EvaluatorError(f"{path} is not a valid ONNX model: {first_line(error)}") from None
    if not model.graph.node:
        raise EvaluatorError(f"{path} is not a valid ONNX model: its graph is empty")
    return model


def nchwc_filter_counts(model: onnx.ModelProto) -> list[int]:
    """Filter counts, in graph order, of the convolutions ONNX Runtime's CPU EP runs in its NCHWc layout on this
    CPU, as padded there (a multiple of its block): read from the graph it optimises the model into."""
    ort = import_onnxruntime()
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # ORT warns that the optimised graph is specific to this CPU: that is the point
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(Path(folder) / "optimised.onnx")
        ort.InferenceSession(model.SerializeToString(), options, providers=[CPU_EP])
        optimised = onnx.load(options.optimized_model_filepath)
    shapes = {init.name: list(init.dims) for init in optimised.graph.initializer}
    return [int(shapes[node.input[1]][0]) for node in optimised.graph.node
            if node.op_type == "Conv" and node.domain.endswith("nchwc") and node.input[1] in shapes]


def unoptimised_logits(classifier: "OnnxClassifier", x: np.ndarray) -> np.ndarray:
    """Logits (N, classes) of the classifier's graph on ONNX Runtime's CPU EP with every graph optimisation off: each
    node runs as the ONNX spec defines it (a QDQ graph dequantizes and computes in float32), the reference for what
    fused integer kernels should compute."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = classifier.threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(classifier.graph.SerializeToString(), options, providers=[CPU_EP])
    size = classifier.fixed_batch or 256
    outputs = []
    for start in range(0, len(x), size):
        chunk = np.ascontiguousarray(x[start:start + size], dtype=np.float32)
        count = len(chunk)
        if classifier.fixed_batch and count < size:
            chunk = np.concatenate([chunk, np.zeros((size - count, *chunk.shape[1:]), np.float32)])
        outputs.append(session.run([classifier.output_name], {classifier.input_name: chunk})[0][:count])
    return np.concatenate(outputs).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=1)
def nchwc_block() -> int:
    """Channels per block of ONNX Runtime's NCHWc convolutions on this CPU (8 with AVX2, 16 with AVX-512), or 1
    where it has none: the filter count ORT pads a one-filter convolution to."""
    weight = numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 6, 6])], [weight])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    probe.ir_version = 8
    padded = nchwc_filter_counts(probe)
    return padded[0] if padded else 1


class OnnxClassifier:
    """An image classifier on ONNX Runtime: x (N, C, H, W) float32 in [0, 1] -> logits (N, classes).

    With CUDA graphs every run has a fixed batch shape (the last batch is padded): one session per
    batch size, its graph captured on the first run and replayed through IOBinding with device buffers
    that never move. `queries` counts the samples sent (padding excluded). `device_id` is the GPU the CUDA EP uses.
    A CUDA session never falls back to the CPU unseen: ORT's own fallback is disabled (a CUDA failure during a run
    is an error), and should a session still end up on the CPU, `runtime` says CPU from then on.
    """

    def __init__(self, path: Path, provider: Provider = "auto", batch_size: int = 256, threads: int | None = None,
                 inputs: InputOverrides = InputOverrides(), device_id: int = 0) -> None:
        self.path = Path(path)
        self.model = load_onnx(self.path)  # the deployed graph, as it is
        self.metadata = read_metadata(self.model)
        try:
            self.graph_input = resolve_input(self.model, self.metadata, inputs)
            self.graph = adapt(self.model, self.graph_input)  # what runs: fed x (N, C, H, W) in [0, 1], read as logits
        except EvaluatorError as error:
            raise EvaluatorError(f"{self.path}: {error}", error.field) from None
        self.input_name, self.input_shape, self.fixed_batch = self._input_signature()
        self.output_name = self.graph.graph.output[0].name
        self.output_type = self._output_type()
        check_batch(batch_size, self.input_shape, "batch size")
        if threads is not None and not 1 <= threads <= MAX_THREADS:
            raise EvaluatorError(f"threads must be between 1 and {MAX_THREADS}, got {threads}")
        self.device_id = check_device(device_id)
        self.batch_size = self.fixed_batch or batch_size
        self.notes: list[str] = []
        if self.fixed_batch:
            self.notes.append(f"the graph's batch dimension is fixed at {self.fixed_batch}: every run is padded to it")
        if len(self.model.graph.output) > 1:
            chosen = self.graph_input.output or self.model.graph.output[0].name
            self.notes.append(f"the graph has {len(self.model.graph.output)} outputs: {chosen!r} is read"
                              f"{'' if self.graph_input.output else ' (the first; choose with output)'}")
        if not self.graph_input.is_plain:
            self.notes.append(f"the graph's input and output: {self.graph_input.describe()}; the evaluator feeds images in "
                              "[0, 1] NCHW (epsilons in that space) through the matching nodes in front of the graph")
        self.threads = threads if threads is not None else available_cores()  # a container's quota, not the host's cores
        self.queries = 0
        self._ort = import_onnxruntime()
        self._serialized = self.graph.SerializeToString()
        self._session: Any = None  # CPU or plain CUDA: one session serves every batch shape
        self._bindings: dict[int, tuple[Any, Any, Any, Any]] = {}  # CUDA graphs: one session per batch shape
        self.runtime = self._choose_provider(provider)
        self.num_classes = self._probe_classes()

    @property
    def uses_cuda_graph(self) -> bool:
        return self.runtime.cuda_graph

    @property
    def pads_batches(self) -> bool:
        """Every run has the shape (batch_size, C, H, W): CUDA graphs or a graph with a fixed batch need that."""
        return self.uses_cuda_graph or self.fixed_batch is not None

    def _input_signature(self) -> tuple[str, tuple[int, int, int], int | None]:
        """Input name, (C, H, W), and the batch size when the graph fixes it (None when it is dynamic), of the graph
        that runs: its one image input is float32 (graph_input.adapt refused or cast every other type)."""
        value = image_input(self.graph)
        dims = input_dims(value)
        if len(dims) != 4 or any(d is None for d in dims[1:]):
            raise EvaluatorError(f"{self.path}: expected an input of shape (batch, C, H, W) with fixed C, H, W; found {dims}")
        if dims[0] == 0 or any(d < 1 for d in dims[1:]):  # type: ignore[operator]
            raise EvaluatorError(f"{self.path}: the input's dimensions must be at least 1, found {dims}")
        shape = (int(dims[1]), int(dims[2]), int(dims[3]))  # type: ignore[arg-type]
        if math.prod(shape) > MAX_INPUT_VALUES:
            raise EvaluatorError(f"{self.path}: an input of {shape[0]}x{shape[1]}x{shape[2]} = {math.prod(shape):,} values is "
                                 f"over the limit of {MAX_INPUT_VALUES:,} values (C x H x W) per image")
        dynamic = dims[0] is None or dims[0] < 0  # ONNX Runtime takes a negative dimension as dynamic too
        fixed_batch = None if dynamic else check_batch(int(dims[0]), shape, "the graph's fixed batch")  # type: ignore[arg-type]
        return value.name, shape, fixed_batch

    def _output_type(self) -> type[np.floating]:
        """numpy dtype of the first output, one of LOGIT_TYPES; integer or boolean outputs would overflow in margins."""
        value_type = self.graph.graph.output[0].type
        elem_type = value_type.tensor_type.elem_type if value_type.HasField("tensor_type") else None
        if elem_type not in LOGIT_TYPES:
            found = value_type.WhichOneof("value") if elem_type is None else TensorProto.DataType.Name(elem_type)
            raise EvaluatorError(f"{self.path}: the first output must be floating-point logits or probabilities (float32, "
                                 f"float16 or float64), found {found}")
        return LOGIT_TYPES[elem_type]

    def _choose_provider(self, provider: Provider) -> RuntimeChoice:
        """CUDA with graphs, else plain CUDA, else CPU; every step down is stated in the note."""
        if provider not in ("auto", "cpu", "cuda"):
            raise EvaluatorError(f"unknown provider {provider!r}: expected auto, cpu or cuda")
        if provider == "cpu":
            return RuntimeChoice(provider, CPU_EP)
        if CUDA_EP not in self._ort.get_available_providers():
            note = "" if provider == "auto" else "CUDA requested but this onnxruntime has no CUDA EP: fell back to CPU"
            return RuntimeChoice(provider, CPU_EP, note=note)
        gpus = visible_gpu_count()
        if gpus is not None and self.device_id >= gpus:
            raise EvaluatorError(f"device {self.device_id} names a GPU this machine does not have: CUDA sees {gpus} "
                                 f"(numbered from 0)", field="device")
        preload_problem = preload_cuda_libraries()
        on_gpu = {"device_id": self.device_id, "device_name": gpu_name(self.device_id)}
        try:
            self._run_cuda_graph(np.zeros((self.batch_size, *self.input_shape), np.float32))  # captures the graph
            return RuntimeChoice(provider, CUDA_EP, cuda_graph=True, **on_gpu)  # type: ignore[arg-type]
        except Exception as error:  # ORT raises plain RuntimeError/Fail for EP problems
            graph_problem = first_line(error)
        self._bindings = {}
        try:
            session = self._new_session(CUDA_EP, cuda_graph=False)
        except Exception as error:  # a broken CUDA install surfaces here
            return RuntimeChoice(provider, CPU_EP, note=f"CUDA EP failed to start ({first_line(error)}): fell back to CPU")
        if session.get_providers()[0] != CUDA_EP:
            reason = "; ".join(filter(None, [cuda_failure_reason(self._ort), preload_problem]))
            return RuntimeChoice(provider, CPU_EP, note=f"ONNX Runtime could not start the CUDA EP on GPU {self.device_id} "
                                 f"({reason}): fell back to CPU")
        self._session = session
        return RuntimeChoice(provider, CUDA_EP, note=f"CUDA graphs unavailable ({graph_problem}): plain CUDA EP",
                             **on_gpu)  # type: ignore[arg-type]

    def _new_session(self, provider: str, cuda_graph: bool = False) -> Any:
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.use_deterministic_compute = True  # same seed, same numbers, on the GPU too
        if provider == CUDA_EP:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # CPU threads wait for the GPU asleep
            cuda = {"device_id": str(self.device_id), "enable_cuda_graph": "1" if cuda_graph else "0",
                    "cudnn_conv_algo_search": "HEURISTIC"}
            session = self._ort.InferenceSession(self._serialized, options, providers=[(CUDA_EP, cuda), CPU_EP])
            if cuda_graph and session.get_providers()[0] != CUDA_EP:
                raise RuntimeError("the session did not start on the CUDA EP")
            if hasattr(session, "disable_fallback"):  # a CUDA error in a run raises instead of rerunning on the CPU
                session.disable_fallback()
            return session
        try:
            return self._ort.InferenceSession(self._serialized, options, providers=[CPU_EP])
        except Exception as error:  # ORT's Fail / InvalidGraph / NotImplemented for graphs it cannot load
            raise EvaluatorError(f"ONNX Runtime cannot load {self.path}: {first_line(error)}") from None

    def _probe_classes(self) -> int:
        logits = self.run_batch(np.zeros((self.fixed_batch or 1, *self.input_shape), dtype=np.float32))
        if logits.ndim != 2:
            raise EvaluatorError(f"{self.path}: expected logits of shape (batch, classes), got {logits.shape}")
        return int(logits.shape[1])

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """One session run on exactly x.shape[0] samples (no padding, no query count); x (N, C, H, W) float32."""
        self._check_batch(x)
        try:
            if not self.uses_cuda_graph:
                if self._session is None:
                    self._session = self._new_session(CPU_EP)
                logits = self._session.run([self.output_name], {self.input_name: x})[0]
                self._check_still_on_cuda()
                return logits
            return self._run_cuda_graph(x)
        except EvaluatorError:
            raise
        except Exception as error:  # ORT raises its own types (Fail, InvalidArgument, RuntimeException)
            raise EvaluatorError(f"ONNX Runtime failed to run {self.path} on a batch of {x.shape[0]} on {self.runtime.used}: "
                                 f"{first_line(error)}") from None

    def _check_batch(self, x: np.ndarray) -> None:
        """Every path takes exactly what the graph's input is: float32 (N, C, H, W); anything else is refused rather
        than converted or copied into a device buffer as raw bytes."""
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            found = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise EvaluatorError(f"{self.path}: a batch of {found} values: the graph takes float32 (N, C, H, W)")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape or x.shape[0] < 1:
            raise EvaluatorError(f"{self.path}: a batch of shape {tuple(x.shape)} does not fit the model's input "
                                 f"(N, {', '.join(map(str, self.input_shape))}) (N, C, H, W)")

    def _check_still_on_cuda(self) -> None:
        """After a plain CUDA run: ORT's Python API reruns a failed CUDA run on the CPU and moves the session there
        (where fallback is not disabled). The runtime then says CPU, with why."""
        if self.runtime.used == CUDA_EP and self._session.get_providers()[0] != CUDA_EP:
            self.runtime = RuntimeChoice(self.runtime.requested, CPU_EP, note=(
                "ONNX Runtime moved the session from the CUDA EP to the CPU during a run (its fallback after a CUDA "
                "error): the figures from then on are the CPU's"))

    def _run_cuda_graph(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        if batch not in self._bindings:
            session = self._new_session(CUDA_EP, cuda_graph=True)
            device_input = self._ort.OrtValue.ortvalue_from_numpy(np.zeros(x.shape, np.float32), "cuda", self.device_id)
            binding = session.io_binding()
            binding.bind_ortvalue_input(self.input_name, device_input)
            device_output = self._ort.OrtValue.ortvalue_from_shape_and_type([batch, self._output_width()], self.output_type, "cuda", self.device_id)
            binding.bind_ortvalue_output(self.output_name, device_output)
            self._bindings[batch] = (session, binding, device_input, device_output)
        session, binding, device_input, device_output = self._bindings[batch]
        device_input.update_inplace(np.ascontiguousarray(x))  # run_batch took only float32
        session.run_with_iobinding(binding)
        return device_output.numpy()

    def _output_width(self) -> int:
        """Number of classes, for the pre-allocated output buffer: from the graph, else from one CPU run."""
        dims = self.graph.graph.output[0].type.tensor_type.shape.dim
        if len(dims) == 2 and dims[1].HasField("dim_value"):
            return int(dims[1].dim_value)
        probe = self._new_session(CPU_EP).run([self.output_name], {self.input_name: np.zeros((self.fixed_batch or 1, *self.input_shape), np.float32)})
        return int(probe[0].shape[-1])

    def logits(self, x: np.ndarray, batch: int | None = None) -> np.ndarray:
        """Logits (N, classes) float32 for any N (float16 and float64 outputs converted); runs of `batch` samples (default
        and whenever batches are padded: `batch_size`), the last one padded when CUDA graphs replay or the graph fixes
        its batch."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise EvaluatorError(f"{self.path}: inputs of shape {tuple(x.shape[1:])} do not fit the model's input {self.input_shape}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        size = self.batch_size if batch is None or self.pads_batches else batch
        outputs = []
        for start in range(0, x.shape[0], size):
            chunk = x[start:start + size]
            count = chunk.shape[0]
            if self.pads_batches and count < size:
                chunk = np.concatenate([chunk, np.zeros((size - count, *self.input_shape), np.float32)])
            outputs.append(self.run_batch(chunk)[:count])
        self.queries += x.shape[0]
        logits = np.concatenate(outputs).astype(np.float32, copy=False) if outputs else np.zeros((0, self.num_classes), np.float32)
        if not np.isfinite(logits).all():
            raise EvaluatorError(f"{self.path}: the model produced NaN or infinite outputs")
        return logits

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Top-1 labels (N,) int64."""
        return self.logits(x).argmax(axis=1)
