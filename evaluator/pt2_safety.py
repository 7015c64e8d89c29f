"""What a .pt2 may contain before torch is allowed to read it: no pickle outside a few tensor-rebuilding globals,
no Python code, no compiled library.

`torch.export.load` trusts its input: it unpickles payloads with `weights_only=False` (or plain `pickle.loads`),
evaluates the graph's symbolic shapes with sympy (an `eval`), compiles `guards_code` into Python, resolves node
targets as any attribute path under `torch`, and can load AOTInductor shared libraries. So a crafted archive is
checked here first, from the bytes that will be loaded (read once; nothing is read from disk again):

1. The zip: no duplicate names, a bounded size, only the entries `torch.export.save` writes for a plain program
   (no AOTInductor, no opaque or TorchBind objects, no legacy layouts).
2. Every pickle (sample inputs, pickled weights or constants) is run through a shadow unpickler whose globals
   resolve to inert stand-ins: each global it asks for must be on ALLOWED_GLOBALS, whatever tricks the pickle
   plays with its stack and memo. Nothing real is built, so nothing runs.
3. The graph (models/*.json): node targets on an allow-list (ATen operators, a few operator-module and symbolic
   helpers), every symbolic expression and guard a small expression of literals, symbols and allowed functions,
   names that are identifiers, tensor inputs only.

The archive is then re-packed from exactly the bytes checked, and `load_program` reads it with torch.load's
`weights_only=True` forced for the whole call as a second line of defence.
"""

from __future__ import annotations

import _compat_pickle
import ast
import io
import json
import math
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from evaluator.errors import EvaluatorError

MAX_ARCHIVE_BYTES = 4 << 30  # the .pt2 file itself
MAX_UNPACKED_BYTES = 8 << 30  # all entries together, uncompressed (a zip bomb stops here)
MAX_PACKING_RATIO = 4  # unpacked / packed bytes: torch.export.save stores entries uncompressed
MAX_ENTRIES = 100_000
MAX_JSON_BYTES = 256 << 20

ALLOWED_GLOBALS = frozenset({
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    *(("torch", f"{kind}Storage") for kind in (
        "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "ComplexFloat",
        "ComplexDouble", "Untyped")),
    *(("torch", dtype) for dtype in (
        "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
        "complex64", "complex128")),
})
OPERATOR_TARGETS = frozenset(
    f"_operator.{name}" for name in ("getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
                                     "abs", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_",
                                     "invert", "lshift", "rshift"))
TORCH_TARGETS = frozenset({"torch._assert", "torch._check", "torch._check_is_size", "torch.sym_int", "torch.sym_float",
                           "torch.sym_max", "torch.sym_min", "torch.sym_not", "torch.sym_ite", "torch.sym_sum",
                           "torch.sym_sqrt", "torch._sym_sqrt", "math.ceil", "math.floor", "math.trunc", "math.sqrt"})
ATEN_TARGET = re.compile(r"torch\.ops\.aten\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
QUALIFIED_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
SYMBOL = re.compile(r"[a-z]+[0-9]+")
SYMPY_NAMES = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Max", "Min", "Abs", "Mod", "Eq", "Ne", "Lt", "Le",
    "Gt", "Ge", "And", "Or", "Not", "oo", "zoo", "nan", "true", "false", "True", "False", "Piecewise", "ITE",
    "floor", "ceiling", "sqrt", "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt",
    "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat",
    "Identity", "OpaqueUnaryFn_sqrt",
})
GUARD_METHODS = frozenset({"size", "stride", "dim", "storage_offset", "numel"})
TREESPEC_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"})
TENSOR_INPUT_KINDS = frozenset({"user_input", "parameter", "buffer", "tensor_constant"})
# Entries below the archive's root folder that `torch.export.save` writes for a plain program.
ENTRY = re.compile(r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                   r"|models/[A-Za-z0-9_.-]+\.json|data/weights/[A-Za-z0-9_.-]+|data/constants/[A-Za-z0-9_.-]+"
                   r"|data/sample_inputs/[A-Za-z0-9_.-]+\.pt|extra/[^/]+)")


class UnsafeArchive(EvaluatorError):
    """A .pt2 that could run code, or that is not the kind of program the evaluator reads."""


@dataclass(frozen=True)
class CheckedArchive:
    """A .pt2 that passed every check, re-packed from the checked bytes; extra_files: its extra/ entries as text."""

    data: bytes
    extra_files: dict[str, str]


def check_pt2(data: bytes, label: str) -> CheckedArchive:
    """Check a .pt2's bytes (see the module docstring); raise UnsafeArchive naming the first problem."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise UnsafeArchive(f"{label} is larger than {MAX_ARCHIVE_BYTES >> 30} GiB")
    entries = read_zip(data, label)
    roots = {name.split("/", 1)[0] for name in entries}
    if len(roots) != 1 or any("/" not in name for name in entries):
        raise UnsafeArchive(f"{label} is not a torch.export archive: its entries do not share one root folder")
    root = roots.pop()
    relative = {name[len(root) + 1:]: payload for name, payload in entries.items()}
    if "archive_version" not in relative:
        raise UnsafeArchive(f"{label} is not a torch.export archive of a supported version (no archive_version; "
                            "older torch.export files are not read)")
    for name in relative:
        if not ENTRY.fullmatch(name):
            raise UnsafeArchive(f"{label} holds {name!r}, which a plain torch.export program does not have "
                                "(compiled code, custom objects and legacy layouts are refused)")
    models = [name for name in relative if name.startswith("models/")]
    if not models:
        raise UnsafeArchive(f"{label} holds no exported program (models/*.json)")
    for name in models:
        check_program_json(relative[name], f"{label}: {name}")
    for kind in ("weights", "constants"):
        for name in [n for n in relative if n.startswith(f"data/{kind}/") and n.endswith("_config.json")]:
            check_payload_config(relative, name, kind, label)
    for name in relative:
        if name.startswith("data/sample_inputs/"):
            check_torch_pickle(relative[name], f"{label}: {name}")
    extra = {}
    for name, payload in relative.items():
        if name.startswith("extra/"):
            try:
                extra[name[len("extra/"):]] = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise UnsafeArchive(f"{label}: {name} is not UTF-8 text") from None
    return CheckedArchive(repack(entries), extra)


def check_zip_file(path: str) -> None:
    """Before a .pt2 is read into memory: it is a zip whose entries make up the file (a zip may carry any data before
    its first entry; gigabytes of it would be read for nothing)."""
    try:
        with zipfile.ZipFile(path) as archive:
            stored = sum(info.compress_size + len(info.filename) + len(info.extra) + 128 for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as error:
        raise UnsafeArchive(f"{path} is not a readable zip archive ({type(error).__name__}: {error})") from None
    size = os.path.getsize(path)
    if size > 2 * stored + (1 << 20):
        raise UnsafeArchive(f"{path} has {size:,} bytes, but its zip entries hold only {stored:,}: not a torch.export "
                            "archive")


def read_zip(data: bytes, label: str) -> dict[str, bytes]:
    """Every entry of a zip, after bounding its count and unpacked size; duplicate names are refused (two readers
    could pick different ones)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(infos) > MAX_ENTRIES:
                raise UnsafeArchive(f"{label} has {len(infos)} entries (at most {MAX_ENTRIES})")
            if len(set(names)) != len(names):
                raise UnsafeArchive(f"{label} names an entry twice")
            unpacked = sum(info.file_size for info in infos)
            if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_PACKING_RATIO * len(data) + (1 << 20):
                raise UnsafeArchive(f"{label} unpacks to {unpacked:,} bytes from {len(data):,}: torch stores its entries "
                                    "uncompressed, so this is not one of its archives (or it is a zip bomb)")
            return {info.filename: archive.read(info) for info in infos if not info.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError, OSError) as error:
        raise UnsafeArchive(f"{label} is not a readable zip archive ({type(error).__name__}: {error})") from None


def repack(entries: dict[str, bytes]) -> bytes:
    """A fresh, uncompressed zip of exactly these entries: what torch reads is what was checked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, payload in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), payload)
    return buffer.getvalue()


def check_payload_config(relative: dict[str, bytes], name: str, kind: str, label: str) -> None:
    """A weights or constants config: plain tensors, or pickles that pass the pickle check; no objects."""
    config = load_json(relative[name], f"{label}: {name}")
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise UnsafeArchive(f"{label}: {name} is not a payload config")
    for fqn, meta in entries.items():
        path = meta.get("path_name") if isinstance(meta, dict) else None
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", path):
            raise UnsafeArchive(f"{label}: {name} entry {fqn!r} has no valid path_name")
        if kind == "constants" and not path.startswith("tensor_"):
            raise UnsafeArchive(f"{label}: constant {fqn!r} is a Python or TorchBind object ({path}), not a tensor")
        payload = relative.get(f"data/{kind}/{path}")
        if payload is None:
            raise UnsafeArchive(f"{label}: {name} names {path}, which the archive lacks")
        if meta.get("use_pickle"):
            check_torch_pickle(payload, f"{label}: data/{kind}/{path}")
        else:
            check_tensor_record(meta.get("tensor_meta"), payload, f"{label}: {kind} {fqn!r}")


def check_tensor_record(meta: Any, payload: bytes, label: str) -> None:
    """A raw tensor record: whole-number sizes, and no values declared over an empty record (torch would make
    zeros of the declared size: a few bytes of JSON asking for terabytes)."""
    sizes = meta.get("sizes") if isinstance(meta, dict) else None
    values = [size.get("as_int") if isinstance(size, dict) else None for size in sizes] if isinstance(sizes, list) else [None]
    if any(not isinstance(value, int) or isinstance(value, bool) or value < 0 for value in values):
        raise UnsafeArchive(f"{label} has no whole-number sizes")
    if math.prod(values) > MAX_UNPACKED_BYTES or (not payload and math.prod(values)):
        raise UnsafeArchive(f"{label} declares {math.prod(values):,} values but stores {len(payload):,} bytes")


def check_torch_pickle(payload: bytes, label: str) -> None:
    """A `torch.save` file (zip layout): every .pkl inside must only ask for ALLOWED_GLOBALS."""
    if not zipfile.is_zipfile(io.BytesIO(payload)):
        raise UnsafeArchive(f"{label} is a legacy (non-zip) torch serialization, which is not read")
    inner = read_zip(payload, label)
    pickles = [name for name in inner if name.endswith(".pkl")]
    if not pickles:
        raise UnsafeArchive(f"{label} holds no pickle")
    for name in pickles:
        scan_pickle(inner[name], f"{label} ({name.rsplit('/', 1)[-1]})")


class _Inert:
    """What every allowed global resolves to in the shadow unpickling: accepts any arguments, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _ShadowUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))  # Python 2 names, as
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)  # pickle maps them for protocols below 3
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeArchive(f"refers to {module}.{name}")
        return type(name, (_Inert,), {})

    def persistent_load(self, pid: Any) -> Any:
        return _Inert()


def scan_pickle(payload: bytes, label: str) -> None:
    """Unpickle with inert stand-ins: raise UnsafeArchive naming the first global outside ALLOWED_GLOBALS."""
    try:
        _ShadowUnpickler(io.BytesIO(payload)).load()
    except UnsafeArchive as error:
        raise UnsafeArchive(f"{label}: its pickle {error}, which is not a tensor-rebuilding global: refused") from None
    except Exception as error:  # a malformed pickle fails in the unpickler's own ways
        raise UnsafeArchive(f"{label}: its pickle is malformed ({type(error).__name__})") from None


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


def check_expression(text: Any, label: str, what: str, guard: bool = False) -> None:
    """A symbolic expression (sympy's srepr or infix form) or a guard: literals, shape symbols and allowed functions
    combined by arithmetic and comparisons; no attribute access (guards: only L['x'].size()[i] and its kin)."""
    if not isinstance(text, str) or len(text) > 10_000:
        raise UnsafeArchive(f"{label}: a {what} is not a short text")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise UnsafeArchive(f"{label}: {what} {text[:80]!r} is not an expression") from None
    for node in ast.walk(tree):
        if not allowed_node(node, guard):
            raise UnsafeArchive(f"{label}: {what} {text[:80]!r} holds code that is not a plain expression")
        if not bounded_size(node):
            raise UnsafeArchive(f"{label}: {what} {text[:80]!r} holds a number or a power too large for a shape")


MAX_LITERAL = 1 << 64
MAX_EXPONENT = 64
POWER_NAMES = frozenset({"Pow", "PowByNatural", "FloatPow"})


def bounded_size(node: ast.AST) -> bool:
    """Literals below 2^64 and powers with a literal exponent up to 64 of a base without powers: evaluating the
    expression (sympy does, eagerly) cannot build a number of millions of digits."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return abs(node.value) < MAX_LITERAL
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exponent = node.left, node.right
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in POWER_NAMES:
        if len(node.args) != 2 or node.keywords:
            return False
        base, exponent = node.args
    else:
        return True
    small = isinstance(exponent, ast.Constant) and isinstance(exponent.value, int) and 0 <= exponent.value <= MAX_EXPONENT
    return small and not any(isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Pow)
                             or isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in POWER_NAMES
                             for inner in ast.walk(base))


EXPRESSION_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Load, ast.operator,
                    ast.unaryop, ast.cmpop, ast.boolop, ast.keyword)


def allowed_node(node: ast.AST, guard: bool) -> bool:
    if isinstance(node, EXPRESSION_NODES):
        return not isinstance(node, ast.keyword) or (node.arg is not None and IDENTIFIER.fullmatch(node.arg) is not None)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, bool)) or (isinstance(node.value, str) and IDENTIFIER.fullmatch(node.value) is not None)
    if isinstance(node, ast.Name):
        return node.id in SYMPY_NAMES or SYMBOL.fullmatch(node.id) is not None or (guard and node.id in ("L", "math"))
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            return node.func.id in SYMPY_NAMES
        return guard and isinstance(node.func, ast.Attribute) and (
            (node.func.attr in GUARD_METHODS and not node.args and not node.keywords)
            or (isinstance(node.func.value, ast.Name) and node.func.value.id == "math" and node.func.attr in ("isnan", "floor", "ceil")))
    if isinstance(node, ast.Attribute):
        return guard and (node.attr in GUARD_METHODS or (isinstance(node.value, ast.Name) and node.value.id == "math"
                                                         and node.attr in ("isnan", "floor", "ceil", "inf")))
    if isinstance(node, ast.Subscript):
        return guard and isinstance(node.slice, ast.Constant)
    return False
