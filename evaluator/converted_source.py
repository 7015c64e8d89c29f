"""Gradients from the deployed graph itself when a model has no PyTorch source: the graph the evaluator runs
(evaluator.graph_input's adapted graph, fed x (N, C, H, W) float32 in [0, 1]) converted to a torch module
(evaluator.onnx_torch) and trusted only after it reproduces ONNX Runtime on the attacked samples, under the export
check's tolerance. Imports torch: the assessment imports it only when a model needs it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from evaluator.errors import EvaluatorError
from evaluator.runtime import OnnxClassifier
from evaluator.source import in_chunks


QUANTIZED_STEPS = 2  # an int8 graph's output may differ by this many steps of its output grid (rounding ties)
QUANTIZED_AGREEMENT = 0.99  # ... and its top-1 label on this share of the inputs at least
REDUCED_RELATIVE = {"int8": 0.05, "fp16": 0.01}  # of the largest logit, where the output is not on an int8 grid


def conversion_tolerance(model: Any, output: str) -> dict[str, float]:
    """verify_conversion's tolerance for a graph of reduced precision (nothing for float32): two steps of an int8
    output's grid, else a share of the largest logit (REDUCED_RELATIVE: the converter computes float16 in float32 and
    rounds int8 ties its own way); top-1 agreement on QUANTIZED_AGREEMENT of the inputs."""
    from evaluator.precision import graph_precision

    step = output_quantization_step(model, output)
    if step is not None:
        return {"atol": QUANTIZED_STEPS * step, "min_agreement": QUANTIZED_AGREEMENT}
    relative = REDUCED_RELATIVE.get(graph_precision(model))
    return {} if relative is None else {"rtol": relative, "min_agreement": QUANTIZED_AGREEMENT}


def output_quantization_step(model: Any, output: str) -> float | None:
    """The grid step of `output` when a DequantizeLinear makes it (its largest scale): an int8 graph's fused kernels
    and its converted QDQ arithmetic round ties differently, one step apart. None for any other output."""
    from onnx import numpy_helper

    producer = next((node for node in model.graph.node if output in node.output), None)
    if producer is None or producer.op_type != "DequantizeLinear":
        return None
    scales = [init for init in model.graph.initializer if init.name == producer.input[1]]
    return float(np.max(np.abs(numpy_helper.to_array(scales[0])))) if scales else None


def converted_graph(classifier: OnnxClassifier, x: np.ndarray) -> tuple[Any | None, str]:
    """(module, note): the classifier's graph as a differentiable module x (N, C, H, W) -> logits (N, classes) and a
    note saying how closely it matched ONNX Runtime on x; (None, why) when it cannot be converted or does not match.
    For probabilities the module returns the logits in front of the final Softmax (same differences between
    classes as the log-probabilities the evaluator reads)."""
    from evaluator.onnx_torch import convert_onnx, logits_before_softmax, verify_conversion
    from evaluator.threads import apply_to_torch

    apply_to_torch()
    proto = classifier.graph
    output = classifier.output_name
    if classifier.graph_input.scores == "probabilities":
        output = logits_before_softmax(proto, classifier.graph_input.output or classifier.model.graph.output[0].name)
    try:
        module = convert_onnx(proto, output)
        if classifier.fixed_batch:
            module = FixedBatch(module, classifier.fixed_batch)
        tolerance = conversion_tolerance(proto, output)
        with torch.no_grad():
            check = verify_conversion(module, proto, x, batch_size=classifier.fixed_batch or 256, **tolerance)
    except EvaluatorError as error:
        return None, (f"white-box attacks skipped: the deployed graph cannot be converted to torch for gradients ({error}); "
                      "give its PyTorch source (.pt2), or a surrogate for transfer attacks")
    if not check.ok:
        return None, (f"white-box attacks skipped: the graph converted to torch does not match ONNX Runtime (max |logit "
                      f"difference| {check.max_abs_diff:.2e}, limit {check.limit:.1e}; top-1 agreement "
                      f"{check.top1_agreement:.4f}); give its PyTorch source (.pt2)")
    return module, (f"white-box attacks use gradients of the deployed graph converted to torch; it matches ONNX Runtime "
                    f"on the {check.samples:,} attacked samples: max |logit difference| {check.max_abs_diff:.1e}, "
                    f"top-1 agreement {check.top1_agreement:.4g}")


class FixedBatch(torch.nn.Module):
    """A graph whose batch dimension is fixed at `batch`: inputs (N, ...) run in chunks of `batch` (source.in_chunks)."""

    def __init__(self, module: torch.nn.Module, batch: int) -> None:
        super().__init__()
        self.module, self.batch = module, batch
        self.output_name = module.output_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_chunks(self.module, x, self.batch)
