"""Reductions, ArgMax/ArgMin, Pad and Resize (nearest and linear, computed axis by axis)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from evaluator.onnx_torch.ops_nn import torch_pads
from evaluator.onnx_torch.ops_shape import given
from evaluator.onnx_torch.registry import Inputs, Node, Tensor, axis_of, ints, op

REDUCTIONS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceSumSquare", "ReduceLogSumExp")


@op(*REDUCTIONS)
def reduce(x: Inputs, node: Node) -> Tensor:
    """Axes from the second input (ReduceSum from opset 13, the others from 18) or the attribute; none: all axes."""
    data = x[0]
    axes = ints(given(x, 1)) if given(x, 1) is not None else list(node.get("axes", []))
    if not axes:
        if node.get("noop_with_empty_axes", 0):
            return data
        axes = list(range(data.dim()))
    dims, keep = tuple(sorted(axis_of(a, data.dim()) for a in axes)), bool(node.get("keepdims", 1))
    kind = node.op_type[len("Reduce"):]
    if kind == "Mean":
        return data.mean(dims, keepdim=keep)
    if kind == "Max":
        return data.amax(dims, keepdim=keep)
    if kind == "Min":
        return data.amin(dims, keepdim=keep)
    if kind == "LogSumExp":
        return torch.logsumexp(data, dims, keepdim=keep)
    if kind == "Prod":
        for dim in reversed(dims):
            data = data.prod(dim, keepdim=keep)
        return data
    values = {"Sum": data, "L1": data.abs(), "L2": data.square(), "SumSquare": data.square()}[kind]
    total = values.sum(dims, keepdim=keep)
    return total.sqrt() if kind == "L2" else total


@op("ArgMax", "ArgMin")
def arg_extreme(x: Inputs, node: Node) -> Tensor:
    data = x[0]
    axis, keep = axis_of(node.get("axis", 0), data.dim()), bool(node.get("keepdims", 1))
    function = torch.argmax if node.op_type == "ArgMax" else torch.argmin
    if node.get("select_last_index", 0):
        return data.shape[axis] - 1 - function(data.flip(axis), dim=axis, keepdim=keep)
    return function(data, dim=axis, keepdim=keep)


PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def check_pad(node: Node) -> str | None:
    return None if node.get("mode", "constant") in PAD_MODES else f"mode={node.get('mode')!r}"


@op("Pad", check=check_pad)
def pad(x: Inputs, node: Node) -> Tensor:
    """Pads [begin_1..begin_n, end_1..end_n] (attribute before opset 11); reflect/edge/wrap pad trailing axes only."""
    data, rank, mode = x[0], x[0].dim(), node.get("mode", "constant")
    if node.opset < 11:
        pads, value = list(node.get("pads")), float(node.get("value", 0.0))
    else:
        fill = given(x, 2)
        pads, value = ints(x[1]), (fill.reshape(-1)[0].item() if fill is not None and fill.numel() else 0.0)
    axes = [axis_of(a, rank) for a in ints(given(x, 3))] if given(x, 3) is not None else list(range(rank))
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    order = torch_pads(full)
    if mode == "constant":
        return F.pad(data, order, value=value)
    padded = max((i // 2 + 1 for i, p in enumerate(order) if p), default=0)
    if padded == 0:
        return data
    if padded > 3 or padded > rank - 1:
        raise ValueError(f"Pad mode {mode!r} can pad at most the last 3 axes and not the first, got pads {pads}")
    return F.pad(data, order[:2 * padded], mode=PAD_MODES[mode])


COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def check_resize(node: Node) -> str | None:
    mode = node.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        return f"mode={mode!r} (nearest and linear are supported)"
    if node.get("coordinate_transformation_mode", "half_pixel") not in COORDINATE_MODES:
        return f"coordinate_transformation_mode={node.get('coordinate_transformation_mode')!r}"
    if node.get("nearest_mode", "round_prefer_floor") not in NEAREST_MODES:
        return f"nearest_mode={node.get('nearest_mode')!r}"
    if node.get("antialias", 0) or node.get("axes") is not None:
        return "antialias and axes are not supported"
    return None


def source_coordinates(node: Node, size_in: int, size_out: int, scale: float) -> Tensor:
    """Where each output index samples the input along one axis (float64, before clamping)."""
    i = torch.arange(size_out, dtype=torch.float64)
    mode = "asymmetric" if node.op_type == "Upsample" else node.get("coordinate_transformation_mode", "half_pixel")
    if mode == "align_corners":
        return i * (size_in - 1) / (size_out - 1) if size_out > 1 else torch.zeros_like(i)
    if mode == "asymmetric":
        return i / scale
    if mode == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    if mode == "pytorch_half_pixel" and size_out == 1:
        return torch.zeros_like(i)
    return (i + 0.5) / scale - 0.5


def resize_axis(data: Tensor, axis: int, size_out: int, scale: float, node: Node) -> Tensor:
    size_in = data.shape[axis]
    where = source_coordinates(node, size_in, size_out, scale)
    if node.get("mode", "nearest") == "nearest":
        rounding = "floor" if node.op_type == "Upsample" else node.get("nearest_mode", "round_prefer_floor")
        index = {"round_prefer_floor": torch.ceil(where - 0.5), "round_prefer_ceil": torch.floor(where + 0.5),
                 "floor": torch.floor(where), "ceil": torch.ceil(where)}[rounding]
        return data.index_select(axis, index.clamp(0, size_in - 1).long().to(data.device))
    where = where.clamp(0, size_in - 1)
    low = where.floor().long()
    high = (low + 1).clamp(max=size_in - 1)
    shape = [1] * data.dim()
    shape[axis] = size_out
    weight = (where - low).to(data.dtype).to(data.device).reshape(shape)
    a, b = data.index_select(axis, low.to(data.device)), data.index_select(axis, high.to(data.device))
    return a + (b - a) * weight


@op("Resize", "Upsample", check=check_resize)
def resize(x: Inputs, node: Node) -> Tensor:
    """Output size from `sizes`, else floor(size x scale) per axis; nearest or (bi)linear interpolation."""
    data = x[0]
    if node.op_type == "Upsample":
        scales, sizes = (given(x, 1) if node.opset >= 9 else torch.tensor(node.get("scales"))), None
    elif node.opset < 11:
        scales, sizes = x[1], None
    else:
        scales, sizes = given(x, 2), given(x, 3)
    if sizes is not None and sizes.numel():
        out = ints(sizes)
        factors = [o / i for o, i in zip(out, data.shape)]
    else:
        factors = [float(s) for s in scales.reshape(-1).tolist()]
        out = [math.floor(i * s) for i, s in zip(data.shape, factors)]
    for axis in range(data.dim()):
        if out[axis] != data.shape[axis] or factors[axis] != 1.0:
            data = resize_axis(data, axis, out[axis], factors[axis], node)
    return data
