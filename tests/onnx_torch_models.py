"""Small torch models exported to ONNX with both of torch's exporters, for the converter's tests."""

from __future__ import annotations

import io
import logging
import warnings

import onnx
import torch
import torch.nn.functional as F
from torch import nn


class MobileStyle(nn.Module):
    """x (N, 16, 16, 3) NHWC in [0, 255] -> probabilities (N, 5): Transpose, Div/Mul/Sub scaling, conv + BatchNorm,
    Hardswish, depthwise conv with a residual Add and a BatchNorm after it, Concat, AveragePool, a Reshape through
    Shape ops, Softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn_after_add = nn.BatchNorm2d(8)
        self.pointwise = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)
        for module in (self.bn, self.bn_after_add):  # statistics that are not the identity
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2) / 255.0 * 2.0 - self.mean
        h = F.hardswish(self.bn(self.stem(x)))
        h = self.bn_after_add(h + F.hardswish(self.depthwise(h)))
        h = self.pointwise(torch.cat([h, torch.relu(-h)], dim=1))
        h = F.avg_pool2d(h, 2)
        return torch.softmax(self.fc(h.reshape(h.shape[0], -1)), dim=1)


def export(model: nn.Module, example: torch.Tensor, dynamo: bool, dynamic: bool) -> onnx.ModelProto:
    """model (eval mode, forward(x)) as ONNX: batch dimension dynamic or fixed at example's."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}} if dynamic else None
            return torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=shapes, verbose=False).model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}} if dynamic else None, opset_version=17)
    return onnx.load_from_string(buffer.getvalue())
