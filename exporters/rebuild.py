"""An editable module from a plain torch.export program (a user's own .pt2, with no evaluator metadata).

The exported graph calls ATen operators on lifted weights, which torch-pruning cannot see as layers. The graph is
copied node by node into an fx.GraphModule whose conv2d, linear and batch-norm calls become nn.Conv2d, nn.Linear and
nn.BatchNorm modules holding the same weights (named as in the user's model); every other operator is kept as it
is, and weights it reads become attributes of the module. No normalisation is assumed: the module is used as is.
The rebuilt module must reproduce the program's logits before it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.export.graph_signature import InputKind

from evaluator.errors import EvaluatorError
from evaluator.source import user_input_values

EXPORTED = "exported"  # the architecture name of a rebuilt user program (and of its pruned children)
aten = torch.ops.aten
CONV = (aten.conv2d.default, aten.convolution.default)
BATCH_NORM = (aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default)
LAYERS = (*CONV, aten.linear.default, *BATCH_NORM)


def arguments(node: fx.Node) -> dict[str, Any]:
    """The node's arguments by schema name, defaults filled in."""
    schema = node.target._schema  # type: ignore[union-attr]
    values = {}
    for index, argument in enumerate(schema.arguments):
        if index < len(node.args):
            values[argument.name] = node.args[index]
        elif argument.name in node.kwargs:
            values[argument.name] = node.kwargs[argument.name]
        else:
            values[argument.name] = argument.default_value
    return values


def pair(value: Any) -> tuple[int, int]:
    values = [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def input_shape(program: torch.export.ExportedProgram, path: Path) -> tuple[int, int, int, int]:
    """(C, H, W, classes) of a program taking one image batch (N, C, H, W) with a dynamic N to logits (N, classes)."""
    inputs = user_input_values(program)
    outputs = [node for node in program.graph.nodes if node.op == "output"][0].args[0]
    value = inputs[0] if len(inputs) == 1 else None
    result = outputs[0].meta.get("val") if len(outputs) == 1 and isinstance(outputs[0], fx.Node) else None
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or not isinstance(result, torch.Tensor) or result.dim() != 2:
        raise EvaluatorError(f"{path} is not an image classifier evaluator prune can read: it must take one (N, C, H, W) "
                             "tensor and return one (N, classes) tensor")
    batch, channels, height, width = value.shape
    if isinstance(batch, int):
        raise EvaluatorError(f"{path} was exported with a fixed batch of {batch}: export it with a dynamic batch "
                             "(torch.export.Dim)")
    if not all(isinstance(size, int) for size in (channels, height, width, result.shape[1])):
        raise EvaluatorError(f"{path} was exported with dynamic channels or image size: only the batch may be dynamic")
    return int(channels), int(height), int(width), int(result.shape[1])


def is_layer(node: fx.Node, tensors: dict[str, torch.Tensor]) -> bool:
    """Whether `node` is a conv2d, linear or batch norm whose weights (and bias) are the model's own tensors."""
    if node.target not in LAYERS:
        return False
    args = arguments(node)

    def owned(value: Any) -> bool:
        return isinstance(value, fx.Node) and value.name in tensors

    return owned(args.get("weight")) and (args.get("bias") is None or owned(args["bias"]))


def layer_module(node: fx.Node, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """The nn.Module doing what `node` (conv2d, convolution, linear or batch norm) does with the given weights."""
    args = arguments(node)
    weight = tensors[args["weight"].name]
    bias = tensors[args["bias"].name] if isinstance(args.get("bias"), fx.Node) else None
    if node.target in CONV:
        if weight.dim() != 4 or args.get("transposed"):
            raise ValueError("only 2-D, non-transposed convolutions can be rebuilt")
        groups = int(args["groups"])
        module: nn.Module = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]),
                                      pair(args["stride"]), pair(args["padding"]), pair(args["dilation"]), groups, bias is not None)
    elif node.target == aten.linear.default:
        module = nn.Linear(weight.shape[1], weight.shape[0], bias is not None)
    else:
        rank = node.args[0].meta["val"].dim()  # type: ignore[union-attr]
        if rank not in (2, 4) or args.get("training"):
            raise ValueError("only inference batch norm over (N, C) or (N, C, H, W) can be rebuilt")
        module = (nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d)(weight.shape[0], eps=float(args["eps"]))
        module.register_buffer("running_mean", tensors[args["running_mean"].name].clone())
        module.register_buffer("running_var", tensors[args["running_var"].name].clone())
    module.weight = nn.Parameter(weight.detach().clone())
    if bias is not None:
        module.bias = nn.Parameter(bias.detach().clone())
    return module


def rebuild_program(program: torch.export.ExportedProgram, path: Path) -> fx.GraphModule:
    """An editable fx.GraphModule computing `program`: forward(x (N, C, H, W)) -> logits (N, classes)."""
    channels, height, width, _ = input_shape(program, path)
    signature = program.graph_signature
    if signature.buffers_to_mutate or signature.user_inputs_to_mutate:
        raise EvaluatorError(f"{path} changes its buffers when it runs (exported in training mode?): export the model "
                             "in eval mode")
    state = {**program.state_dict, **program.constants}
    targets = {spec.arg.name: spec.target for spec in signature.input_specs if spec.kind != InputKind.USER_INPUT}
    tensors = {name: state[target] for name, target in targets.items() if target in state}
    parameters = {spec.arg.name for spec in signature.input_specs if spec.kind == InputKind.PARAMETER}
    graph, root, mapped = fx.Graph(), nn.Module(), {}  # type: ignore[var-annotated]
    try:
        for node in program.graph.nodes:
            if node.op == "placeholder":
                if node.name not in targets:
                    mapped[node] = graph.placeholder("x")
                continue
            if node.op == "output":
                graph.output(mapped[node.args[0][0]])  # input_shape checked there is one output
                continue
            if node.op != "call_function":
                raise EvaluatorError(f"{path} holds {node.op} nodes (control flow or submodules), which cannot be rebuilt")
            if is_layer(node, tensors):
                name = targets[arguments(node)["weight"].name].rpartition(".")[0] or node.name
                add_submodule(root, name, layer_module(node, tensors))
                mapped[node] = graph.call_module(name, (mapped[node.args[0]],))
                continue
            source = node.args[0] if node.args else None
            if isinstance(source, fx.Node) and source.target == BATCH_NORM[1] and is_layer(source, tensors):
                if node.args[1] != 0:  # getitem of (output, mean, rstd)
                    raise ValueError("only the output of an inference batch norm can be used")
                mapped[node] = mapped[node.args[0]]
                continue
            for used in node.all_input_nodes:
                if used not in mapped and used.name in targets:
                    mapped[used] = attribute(graph, root, targets[used.name], tensors[used.name], used.name in parameters)
            copied = graph.node_copy(node, lambda n: mapped[n])
            copied.meta = {}
            mapped[node] = copied
        module = fx.GraphModule(root, graph)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as error:
        raise EvaluatorError(f"{path}: its graph cannot be rebuilt as an editable module ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from None
    check_rebuilt(program, module, (channels, height, width), path)
    return module.eval()


def add_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Register `module` at a dotted path, creating empty containers on the way; a path in use is an error."""
    *parents, leaf = name.split(".")
    owner = container(root, parents)
    if hasattr(owner, leaf):
        raise ValueError(f"{name} is used by two layers (shared weights)")
    owner.add_module(leaf, module)


def container(root: nn.Module, path: list[str]) -> nn.Module:
    """The submodule at `path` under `root`, made of empty modules where missing."""
    owner = root
    for part in path:
        if not hasattr(owner, part):
            owner.add_module(part, nn.Module())
        owner = getattr(owner, part)
    return owner


def attribute(graph: fx.Graph, root: nn.Module, target: str, tensor: torch.Tensor, parameter: bool) -> fx.Node:
    """A get_attr node for a weight an operator other than a layer reads (a parameter, buffer or constant)."""
    *parents, leaf = target.split(".")
    owner = container(root, parents)
    value = tensor.detach().clone()
    if parameter:
        owner.register_parameter(leaf, nn.Parameter(value))
    else:
        owner.register_buffer(leaf, value)
    return graph.get_attr(target)


def check_rebuilt(program: torch.export.ExportedProgram, module: nn.Module, shape: tuple[int, int, int], path: Path) -> None:
    """The rebuilt module's logits equal the program's on a random batch (N=2)."""
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = program.module()(x), module.eval()(x)
    if not torch.allclose(expected, got, rtol=1e-4, atol=1e-5):
        raise EvaluatorError(f"{path}: the rebuilt module does not reproduce the program's logits "
                             f"(max |diff| {float((expected - got).abs().max()):.2e})")
