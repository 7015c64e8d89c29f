"""ONNX graphs as differentiable torch modules, for white-box attacks on a deployed graph without its PyTorch source.

Imports torch: the light modules of the evaluator must not import this package.
"""

from evaluator.onnx_torch.convert import OnnxModule, convert_onnx, logits_before_softmax
from evaluator.onnx_torch.registry import OPS, UnsupportedGraph
from evaluator.onnx_torch.verify import ConversionCheck, ConversionMismatch, verify_conversion

__all__ = ["OPS", "ConversionCheck", "ConversionMismatch", "OnnxModule", "UnsupportedGraph", "convert_onnx",
           "logits_before_softmax", "verify_conversion"]
