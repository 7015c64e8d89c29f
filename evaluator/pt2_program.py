"""The serialized ExportedProgram of a .pt2 (models/*.json): node targets on an allow-list, names that are
identifiers, tensor inputs only, tree specs of known containers; expressions and guards go to pt2_expressions."""

from __future__ import annotations

import json
import re
from typing import Any

from evaluator.pt2_expressions import IDENTIFIER, SYMBOL, check_expression
from evaluator.pt2_zip import UnsafeArchive

MAX_JSON_BYTES = 256 << 20
OPERATOR_TARGETS = frozenset(
    f"_operator.{name}" for name in ("getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
                                     "abs", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_",
                                     "invert", "lshift", "rshift"))
TORCH_TARGETS = frozenset({"torch._assert", "torch._check", "torch._check_is_size", "torch.sym_int", "torch.sym_float",
                           "torch.sym_max", "torch.sym_min", "torch.sym_not", "torch.sym_ite", "torch.sym_sum",
                           "torch.sym_sqrt", "torch._sym_sqrt", "math.ceil", "math.floor", "math.trunc", "math.sqrt"})
ATEN_TARGET = re.compile(r"torch\.ops\.aten\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
QUALIFIED_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
TREESPEC_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"})
TENSOR_INPUT_KINDS = frozenset({"user_input", "parameter", "buffer", "tensor_constant"})


def load_json(payload: bytes, label: str) -> Any:
    if len(payload) > MAX_JSON_BYTES:
        raise UnsafeArchive(f"{label} is larger than {MAX_JSON_BYTES >> 20} MiB")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UnsafeArchive(f"{label} is not valid JSON ({type(error).__name__})") from None


def check_program_json(payload: bytes, label: str) -> None:
    """The serialized ExportedProgram: everything torch would evaluate or resolve is on an allow-list."""
    program = load_json(payload, label)
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise UnsafeArchive(f"{label} is not a serialized exported program")
    module = program["graph_module"]
    guards = program.get("guards_code") or []
    if not isinstance(guards, list):
        raise UnsafeArchive(f"{label}: guards_code is not a list")
    for guard in guards:
        check_expression(guard, label, "guard", guard=True)
    for key in program.get("range_constraints") or {}:
        check_symbol_name(key, label)
    check_signature(module.get("signature"), label)
    for spec in module.get("module_call_graph") or []:
        signature = spec.get("signature") if isinstance(spec, dict) else None
        if signature:
            for key in ("in_spec", "out_spec"):
                check_treespec(signature.get(key), label)
            for name in signature.get("forward_arg_names") or []:
                check_identifier(name, label, "argument name")
    if module.get("treespec_namedtuple_fields"):
        raise UnsafeArchive(f"{label}: named-tuple inputs or outputs are not supported")
    graph = module.get("graph")
    if not isinstance(graph, dict):
        raise UnsafeArchive(f"{label} has no graph")
    walk(graph, label)


def walk(value: Any, label: str) -> None:
    """Every target, operator, symbolic expression, name and custom object anywhere in a graph (subgraphs too)."""
    if isinstance(value, list):
        for item in value:
            walk(item, label)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key == "metadata":
            continue  # kept as text (stack traces, module paths); never resolved to code
        if key in ("target", "as_operator") and isinstance(item, str):
            check_target(item, label)
        elif key == "expr_str":
            check_expression(item, label, "symbolic expression")
        elif key == "name" and isinstance(item, str):
            check_identifier(item, label, "name")
        elif key in ("custom_obj_values", "as_custom_obj", "as_graph", "as_scalar_type_hop") and item:
            raise UnsafeArchive(f"{label}: holds {key} (custom objects or sub-graphs), which are not supported")
        walk(item, label)


def check_target(target: str, label: str) -> None:
    if target in OPERATOR_TARGETS or target in TORCH_TARGETS:
        return
    if ATEN_TARGET.fullmatch(target) and "file" not in target.split(".")[3]:
        return
    raise UnsafeArchive(f"{label}: node target {target!r} is not an ATen operator or an allowed helper")


def check_identifier(name: Any, label: str, what: str) -> None:
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise UnsafeArchive(f"{label}: {what} {name!r} is not an identifier")


def check_symbol_name(name: Any, label: str) -> None:
    if not isinstance(name, str) or not SYMBOL.fullmatch(name):
        raise UnsafeArchive(f"{label}: symbol {name!r} is not a shape symbol like s0")


def check_signature(signature: Any, label: str) -> None:
    """Inputs are tensors (user inputs, parameters, buffers, constants); a string or number input would be spliced
    into generated guard code."""
    if not isinstance(signature, dict):
        raise UnsafeArchive(f"{label} has no signature")
    for spec in signature.get("input_specs") or []:
        kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
        if kind not in TENSOR_INPUT_KINDS:
            raise UnsafeArchive(f"{label}: input of kind {kind!r} is not supported (tensors only)")
        arg = spec[kind].get("arg") if isinstance(spec[kind], dict) else None
        if kind == "user_input" and not (isinstance(arg, dict) and set(arg) == {"as_tensor"}):
            raise UnsafeArchive(f"{label}: a user input that is not a tensor is not supported")
        for key in ("parameter_name", "buffer_name", "tensor_constant_name"):
            name = spec[kind].get(key)
            if name is not None and not (isinstance(name, str) and QUALIFIED_NAME.fullmatch(name)):
                raise UnsafeArchive(f"{label}: {key} {name!r} is not a dotted name")


def check_treespec(text: Any, label: str) -> None:
    """A pytree spec (JSON text): containers of known types whose dict keys are identifiers."""
    if text is None:
        return
    if not isinstance(text, str):
        raise UnsafeArchive(f"{label}: a tree spec is not text")
    spec = load_json(text.encode(), f"{label} tree spec")

    def visit(node: Any) -> None:
        if not isinstance(node, dict) or node.get("type") not in TREESPEC_TYPES:
            raise UnsafeArchive(f"{label}: inputs or outputs of type {node.get('type') if isinstance(node, dict) else node!r} "
                                "are not supported")
        if node.get("type") in ("builtins.dict", "collections.OrderedDict"):
            keys = load_json(str(node.get("context")).encode(), f"{label} tree spec keys")
            for key in keys if isinstance(keys, list) else [keys]:
                check_identifier(key, label, "input key")
        for child in node.get("children_spec") or []:
            visit(child)

    if not (isinstance(spec, list) and len(spec) == 2):
        raise UnsafeArchive(f"{label}: a tree spec is malformed")
    visit(spec[1])
