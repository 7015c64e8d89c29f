"""How closely two runs of one classifier must agree: PyTorch against ONNX Runtime at export, and a graph converted
back to torch against ONNX Runtime. Pure Python: no numpy, ONNX or torch."""

from __future__ import annotations

MAX_LOGIT_DIFF = 1e-4  # absolute, plus MAX_LOGIT_RELATIVE x the largest |logit|: float32 rounding grows with magnitude
# and depth, with the activations inside the graph more than with the logits (dead kernel-pruned models with large
# logits differ most). An export bug is off by a share of the logits, far above this.
MAX_LOGIT_RELATIVE = 1e-4


def logit_limit(largest_logit: float, atol: float = MAX_LOGIT_DIFF, rtol: float = MAX_LOGIT_RELATIVE) -> float:
    """The largest |logit difference| allowed when the reference's largest |logit| is `largest_logit`."""
    return atol + rtol * largest_logit
