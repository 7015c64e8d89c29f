"""Check a converted module against ONNX Runtime on real inputs before it is trusted for gradients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from evaluator.agreement import MAX_LOGIT_DIFF, MAX_LOGIT_RELATIVE, logit_limit
from evaluator.errors import EvaluatorError
from evaluator.onnx_torch.convert import OnnxModule
from evaluator.runtime import CPU_EP, first_line, import_onnxruntime, load_onnx

ORT_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
                   "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


class ConversionMismatch(EvaluatorError):
    """The converted module does not reproduce ONNX Runtime closely enough to stand in for the graph."""


@dataclass(frozen=True)
class ConversionCheck:
    """How closely the converted module reproduces ONNX Runtime's output (N, ...) on `samples` inputs.

    max_relative_diff is max_abs_diff over the largest |ONNX Runtime output|; limit = atol + rtol x that largest
    value (evaluator.agreement, the export check's tolerance)."""

    samples: int
    max_abs_diff: float
    max_relative_diff: float
    limit: float
    top1_agreement: float
    min_agreement: float = 1.0  # below 1 for a quantized graph, whose rounding ties may fall either way

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.limit and self.top1_agreement >= self.min_agreement

    def require(self) -> "ConversionCheck":
        """Itself when ok, else ConversionMismatch."""
        if not self.ok:
            raise ConversionMismatch(f"the converted graph does not match ONNX Runtime: max |output diff| {self.max_abs_diff:.2e} "
                                     f"(limit {self.limit:.1e}), top-1 agreement {self.top1_agreement:.4f} on {self.samples} samples")
        return self


def ort_session(model: Any, output: str) -> Any:
    """A CPU session that returns `output`: `model` is a session already (used as is), an ONNX path or a ModelProto
    (`output` is added to the graph's outputs when it is an inner tensor)."""
    if hasattr(model, "run") and hasattr(model, "get_inputs"):
        return model
    proto = onnx.ModelProto()
    proto.CopyFrom(model if isinstance(model, onnx.ModelProto) else load_onnx(Path(model)))
    if output not in {value.name for value in proto.graph.output}:
        proto.graph.output.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=[CPU_EP])
    except Exception as error:  # ORT's own error types for a graph it cannot load
        raise EvaluatorError(f"ONNX Runtime cannot load the graph: {first_line(error)}") from None


def verify_conversion(module: OnnxModule, model: Any, x: np.ndarray, batch_size: int = 256,
                      atol: float = MAX_LOGIT_DIFF, rtol: float = MAX_LOGIT_RELATIVE,
                      min_agreement: float = 1.0) -> ConversionCheck:
    """Run `module` and ONNX Runtime (`model`: a path, a ModelProto or an InferenceSession) on x (N, ...) in the
    graph's input layout, `batch_size` samples at a time, and compare their outputs (N, ...); top-1 over the
    output flattened to (N, -1). Use check.require() to raise when they disagree."""
    session = ort_session(model, module.output_name)
    if module.output_name not in {value.name for value in session.get_outputs()}:
        raise EvaluatorError(f"the session has no output {module.output_name!r}: give the ONNX file or ModelProto instead")
    feed = session.get_inputs()[0]
    dtype = ORT_INPUT_TYPES.get(feed.type, np.float32)
    device = next((buffer.device for buffer in module.buffers()), torch.device("cpu"))
    converted, reference = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = x[start:start + batch_size]
            reference.append(np.asarray(session.run([module.output_name], {feed.name: chunk.astype(dtype)})[0], np.float64))
            tensor = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(device)
            converted.append(module(tensor).double().cpu().numpy())
    ours, theirs = np.concatenate(converted), np.concatenate(reference)
    if ours.shape != theirs.shape:
        raise ConversionMismatch(f"the converted graph's output has shape {ours.shape}, ONNX Runtime's {theirs.shape}")
    largest = float(np.abs(theirs).max()) if theirs.size else 0.0
    diff = float(np.abs(ours - theirs).max()) if ours.size else 0.0
    diff = diff if np.isfinite(ours).all() == np.isfinite(theirs).all() else float("inf")
    agreement = float((ours.reshape(len(ours), -1).argmax(1) == theirs.reshape(len(theirs), -1).argmax(1)).mean())
    return ConversionCheck(len(x), diff, diff / largest if largest > 0 else diff, logit_limit(largest, atol, rtol), agreement,
                           min_agreement)
