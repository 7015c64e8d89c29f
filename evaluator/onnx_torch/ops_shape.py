"""Shape and indexing ops: Shape, Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Concat, Split, Slice, Gather,
constants, Expand, Tile, Range. Shapes travel as int64 tensors on the input's device."""

from __future__ import annotations

import math

import torch

from evaluator.onnx_torch.registry import Inputs, Node, Tensor, axis_of, ints, op


def given(x: Inputs, index: int) -> Tensor | None:
    """Input `index`, or None when the node omits it."""
    return x[index] if len(x) > index else None


def axes_of(x: Inputs, node: Node, index: int) -> list[int] | None:
    """Axes from input `index` (newer opsets) or the `axes` attribute; None when neither is given."""
    tensor = given(x, index)
    if tensor is not None:
        return ints(tensor)
    axes = node.get("axes")
    return None if axes is None else list(axes)


@op("Shape")
def shape(x: Inputs, node: Node) -> Tensor:
    dims = list(x[0].shape)[node.get("start", 0):node.get("end", None)]
    return torch.tensor(dims, dtype=torch.int64, device=x[0].device)


@op("Size")
def size(x: Inputs, node: Node) -> Tensor:
    return torch.tensor(x[0].numel(), dtype=torch.int64, device=x[0].device)


@op("Reshape")
def reshape(x: Inputs, node: Node) -> Tensor:
    """A 0 in the target shape copies the input's dimension (unless allowzero); one -1 is inferred."""
    data, target = x[0], ints(x[1])
    if not node.get("allowzero", 0):
        target = [data.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return data.reshape(target)


@op("Flatten")
def flatten(x: Inputs, node: Node) -> Tensor:
    data = x[0]
    axis = axis_of(node.get("axis", 1), data.dim())
    return data.reshape(math.prod(data.shape[:axis]), math.prod(data.shape[axis:]))


@op("Transpose")
def transpose(x: Inputs, node: Node) -> Tensor:
    perm = node.get("perm")
    return x[0].permute(list(perm) if perm is not None else list(reversed(range(x[0].dim()))))


@op("Squeeze")
def squeeze(x: Inputs, node: Node) -> Tensor:
    axes = axes_of(x, node, 1)
    if not axes:
        return x[0].squeeze()
    return x[0].squeeze(tuple(axis_of(a, x[0].dim()) for a in axes))


@op("Unsqueeze")
def unsqueeze(x: Inputs, node: Node) -> Tensor:
    axes = axes_of(x, node, 1) or []
    data = x[0]
    rank = data.dim() + len(axes)
    for axis in sorted(axis_of(a, rank) for a in axes):
        data = data.unsqueeze(axis)
    return data


@op("Concat")
def concat(x: Inputs, node: Node) -> Tensor:
    parts = [t for t in x if t is not None]
    return torch.cat(parts, dim=axis_of(node.get("axis"), parts[0].dim()))


@op("Split")
def split(x: Inputs, node: Node) -> tuple[Tensor, ...]:
    """Sizes from the `split` input or attribute, else equal parts (the last one smaller when they do not divide)."""
    data = x[0]
    axis = axis_of(node.get("axis", 0), data.dim())
    sizes = ints(given(x, 1)) if given(x, 1) is not None else node.get("split")
    if sizes:
        return tuple(torch.split(data, list(sizes), dim=axis))
    parts = node.get("num_outputs", node.outputs)
    return tuple(torch.split(data, math.ceil(data.shape[axis] / parts), dim=axis))


@op("Slice")
def slice_(x: Inputs, node: Node) -> Tensor:
    """starts/ends/axes/steps as inputs (opset 10 on) or attributes; out-of-range bounds clamp like ONNX's."""
    data = x[0]
    if node.opset < 10:
        starts, ends, axes, steps = list(node.get("starts")), list(node.get("ends")), node.get("axes"), None
    else:
        starts, ends = ints(x[1]), ints(x[2])
        axes = ints(given(x, 3)) if given(x, 3) is not None else None
        steps = ints(given(x, 4)) if given(x, 4) is not None else None
    axes = list(axes) if axes else list(range(len(starts)))
    steps = steps or [1] * len(starts)
    index: list[slice] = [slice(None)] * data.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis_of(axis, data.dim())
        bounds = slice(start, end, step).indices(data.shape[axis])
        if step > 0:
            index[axis] = slice(*bounds)
        else:  # torch slices only forward: pick the indices
            picked = torch.tensor(list(range(*bounds)), dtype=torch.int64, device=data.device)
            data = data.index_select(axis, picked)
    return data[tuple(index)]


@op("Gather")
def gather(x: Inputs, node: Node) -> Tensor:
    """data.shape[:axis] + indices.shape + data.shape[axis + 1:]; negative indices count from the end."""
    data, indices = x[0], x[1].long()
    axis = axis_of(node.get("axis", 0), data.dim())
    indices = torch.where(indices < 0, indices + data.shape[axis], indices)
    picked = data.index_select(axis, indices.reshape(-1))
    return picked.reshape(tuple(data.shape[:axis]) + tuple(indices.shape) + tuple(data.shape[axis + 1:]))


@op("Identity")
def identity(x: Inputs, node: Node) -> Tensor:
    return x[0]


@op("Dropout")
def dropout(x: Inputs, node: Node) -> Tensor | tuple[Tensor, Tensor]:
    """Inference: the input itself (and an all-true mask when the graph asks for it)."""
    if node.outputs > 1:
        return x[0], torch.ones_like(x[0], dtype=torch.bool)
    return x[0]


CONSTANT_ATTRIBUTES = ("value", "value_float", "value_floats", "value_int", "value_ints")


def check_constant(node: Node) -> str | None:
    if not any(key in node.attrs for key in CONSTANT_ATTRIBUTES):
        return f"only {', '.join(CONSTANT_ATTRIBUTES)} constants are supported"
    return None


@op("Constant", check=check_constant)
def constant(x: Inputs, node: Node) -> Tensor:
    if "value" in node.attrs:
        return node.get("value")
    value = next(node.get(key) for key in CONSTANT_ATTRIBUTES if key in node.attrs)
    dtype = torch.float32 if "float" in next(key for key in CONSTANT_ATTRIBUTES if key in node.attrs) else torch.int64
    return torch.tensor(value, dtype=dtype)


@op("ConstantOfShape")
def constant_of_shape(x: Inputs, node: Node) -> Tensor:
    value = node.get("value")
    fill, dtype = (0.0, torch.float32) if value is None else (value.reshape(-1)[0].item(), value.dtype)
    return torch.full(ints(x[0]), fill, dtype=dtype, device=x[0].device)


@op("Expand")
def expand(x: Inputs, node: Node) -> Tensor:
    """Broadcast both ways: the output has the broadcast of the input's shape and the given one."""
    return x[0].expand(torch.broadcast_shapes(x[0].shape, tuple(ints(x[1]))))


@op("Tile")
def tile(x: Inputs, node: Node) -> Tensor:
    return x[0].repeat(ints(x[1]))


@op("Range")
def range_(x: Inputs, node: Node) -> Tensor:
    start, limit, delta = (t.reshape(-1)[0].item() for t in x[:3])
    return torch.arange(start, limit, delta, dtype=x[0].dtype, device=x[0].device)
