"""Layer ops: Conv, ConvTranspose, Gemm, MatMul, pooling, normalisation, Softmax. Activations are (N, C, *spatial)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from evaluator.onnx_torch.registry import Inputs, Node, Tensor, op

CONV = (F.conv1d, F.conv2d, F.conv3d)
CONV_TRANSPOSE = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
MAX_POOL = (F.max_pool1d, F.max_pool2d, F.max_pool3d)
AVG_POOL = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def spatial_pads(node: Node, sizes: tuple[int, ...] | torch.Size, kernel: list[int], strides: list[int],
                 dilations: list[int]) -> list[int]:
    """ONNX pads [begin_1, ..., begin_n, end_1, ..., end_n] for `sizes` (the input's spatial sizes), auto_pad applied."""
    auto_pad = node.get("auto_pad", "NOTSET")
    n = len(kernel)
    if auto_pad == "VALID":
        return [0] * (2 * n)
    if auto_pad == "NOTSET":
        return list(node.get("pads", [0] * (2 * n)))
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def torch_pads(pads: list[int]) -> list[int]:
    """ONNX pads [begin_1..begin_n, end_1..end_n] in F.pad's order: last axis first, (begin, end) pairs."""
    n = len(pads) // 2
    return [p for axis in reversed(range(n)) for p in (pads[axis], pads[n + axis])]


def check_window(node: Node) -> str | None:
    if node.get("auto_pad", "NOTSET") not in AUTO_PADS:
        return f"auto_pad={node.get('auto_pad')!r}"
    return None


def window(node: Node, data: Tensor, kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Strides, dilations and ONNX pads of a convolution or pooling node over `data`."""
    n = len(kernel)
    strides, dilations = list(node.get("strides", [1] * n)), list(node.get("dilations", [1] * n))
    return strides, dilations, spatial_pads(node, data.shape[2:], kernel, strides, dilations)


@op("Conv", check=check_window)
def conv(x: Inputs, node: Node) -> Tensor:
    data, weight = x[0], x[1]
    bias = x[2] if len(x) > 2 else None
    kernel = list(weight.shape[2:])
    strides, dilations, pads = window(node, data, kernel)
    n = len(kernel)
    padding: list[int] | int = pads[:n]
    if pads[:n] != pads[n:]:
        data, padding = F.pad(data, torch_pads(pads)), 0
    return CONV[n - 1](data, weight, bias, strides, padding, dilations, node.get("group", 1))


def check_conv_transpose(node: Node) -> str | None:
    if node.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return f"auto_pad={node.get('auto_pad')!r} (only explicit pads)"
    return "output_shape is not supported (give pads)" if node.get("output_shape") is not None else None


@op("ConvTranspose", check=check_conv_transpose)
def conv_transpose(x: Inputs, node: Node) -> Tensor:
    """Computed without padding, then cropped by the (possibly asymmetric) pads."""
    data, weight = x[0], x[1]
    bias = x[2] if len(x) > 2 else None
    n = weight.dim() - 2
    strides, dilations = list(node.get("strides", [1] * n)), list(node.get("dilations", [1] * n))
    pads = [0] * (2 * n) if node.get("auto_pad", "NOTSET") == "VALID" else list(node.get("pads", [0] * (2 * n)))
    output_padding = list(node.get("output_padding", [0] * n))
    y = CONV_TRANSPOSE[n - 1](data, weight, bias, strides, 0, output_padding, node.get("group", 1), dilations)
    crop = [slice(None), slice(None)] + [slice(pads[i], y.shape[2 + i] - pads[n + i]) for i in range(n)]
    return y[tuple(crop)]


def check_max_pool(node: Node) -> str | None:
    if node.outputs > 1:
        return "the Indices output is not supported"
    return check_window(node)


@op("MaxPool", check=check_max_pool)
def max_pool(x: Inputs, node: Node) -> Tensor:
    data, kernel = x[0], list(node.get("kernel_shape"))
    strides, dilations, pads = window(node, data, kernel)
    n = len(kernel)
    padding: list[int] | int = pads[:n]
    if pads[:n] != pads[n:] or any(p > k // 2 for p, k in zip(pads, kernel)):
        data, padding = F.pad(data, torch_pads(pads), value=-math.inf), 0
    return MAX_POOL[n - 1](data, kernel, strides, padding, dilations, ceil_mode=bool(node.get("ceil_mode", 0)))


def check_average_pool(node: Node) -> str | None:
    if any(d != 1 for d in node.get("dilations", [])):
        return "dilated average pooling is not supported"
    return check_window(node)


@op("AveragePool", check=check_average_pool)
def average_pool(x: Inputs, node: Node) -> Tensor:
    data, kernel = x[0], list(node.get("kernel_shape"))
    strides, _, pads = window(node, data, kernel)
    n, ceil, include = len(kernel), bool(node.get("ceil_mode", 0)), bool(node.get("count_include_pad", 0))
    pool = AVG_POOL[n - 1]
    if pads[:n] == pads[n:] and all(p <= k // 2 for p, k in zip(pads, kernel)):
        return pool(data, kernel, strides, pads[:n], ceil, include)
    # Asymmetric pads: pool the zero-padded input and divide by the pooled count of the cells that count.
    ones = torch.ones((1, 1, *data.shape[2:]), dtype=data.dtype, device=data.device)
    counts = pool(F.pad(ones, torch_pads(pads), value=1.0 if include else 0.0), kernel, strides, 0, ceil)
    return pool(F.pad(data, torch_pads(pads)), kernel, strides, 0, ceil) / counts


@op("GlobalAveragePool")
def global_average_pool(x: Inputs, node: Node) -> Tensor:
    return x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)


@op("GlobalMaxPool")
def global_max_pool(x: Inputs, node: Node) -> Tensor:
    return x[0].amax(dim=tuple(range(2, x[0].dim())), keepdim=True)


@op("Gemm")
def gemm(x: Inputs, node: Node) -> Tensor:
    """alpha * A' B' + beta * C, A' = A (M, K) or its transpose, B' likewise (K, N)."""
    a, b = x[0], x[1]
    c = x[2] if len(x) > 2 else None
    alpha, beta = node.get("alpha", 1.0), node.get("beta", 1.0)
    trans_a, trans_b = node.get("transA", 0), node.get("transB", 0)
    if trans_b and not trans_a and alpha == 1.0 and beta == 1.0 and (c is None or c.dim() == 1):
        return F.linear(a, b, c)
    y = (a.t() if trans_a else a) @ (b.t() if trans_b else b)
    y = y if alpha == 1.0 else alpha * y
    return y if c is None else y + (c if beta == 1.0 else beta * c)


@op("MatMul")
def matmul(x: Inputs, node: Node) -> Tensor:
    return torch.matmul(x[0], x[1])


def check_single_output(node: Node) -> str | None:
    if node.outputs > 1:
        return "only the first output (inference) is supported"
    return "training_mode=1 is not supported" if node.get("training_mode", 0) else None


@op("BatchNormalization", check=check_single_output)
def batch_norm(x: Inputs, node: Node) -> Tensor:
    """Inference: the running mean and variance (inputs 3 and 4)."""
    return F.batch_norm(x[0], x[3], x[4], x[1], x[2], training=False, eps=node.get("epsilon", 1e-5))


@op("InstanceNormalization")
def instance_norm(x: Inputs, node: Node) -> Tensor:
    return F.instance_norm(x[0], weight=x[1], bias=x[2], eps=node.get("epsilon", 1e-5))


@op("LayerNormalization", check=check_single_output)
def layer_norm(x: Inputs, node: Node) -> Tensor:
    """Normalises over the axes from `axis` to the last; scale and bias broadcast over them."""
    data, scale = x[0], x[1]
    bias = x[2] if len(x) > 2 else None
    axis, eps = node.get("axis", -1), node.get("epsilon", 1e-5)
    axis = axis + data.dim() if axis < 0 else axis
    shape = tuple(data.shape[axis:])
    if tuple(scale.shape) == shape and (bias is None or tuple(bias.shape) == shape):
        return F.layer_norm(data, shape, scale, bias, eps)
    dims = tuple(range(axis, data.dim()))
    mean = data.mean(dims, keepdim=True)
    variance = (data - mean).square().mean(dims, keepdim=True)
    y = (data - mean) / torch.sqrt(variance + eps) * scale
    return y if bias is None else y + bias


@op("LRN")
def local_response_norm(x: Inputs, node: Node) -> Tensor:
    return F.local_response_norm(x[0], node.get("size"), node.get("alpha", 1e-4), node.get("beta", 0.75),
                                 node.get("bias", 1.0))


@op("Softmax", "LogSoftmax")
def softmax(x: Inputs, node: Node) -> Tensor:
    """Along `axis` (opset 13 on); before opset 13 over the input flattened to 2-D at `axis` (default 1)."""
    function = torch.softmax if node.op_type == "Softmax" else torch.log_softmax
    data = x[0]
    if node.opset >= 13:
        return function(data, dim=node.get("axis", -1))
    axis = node.get("axis", 1)
    axis = axis + data.dim() if axis < 0 else axis
    flat = data.reshape(math.prod(data.shape[:axis]), -1)
    return function(flat, dim=1).reshape(data.shape)
