"""The symbolic expressions and guards of a .pt2's program (sympy would evaluate them, torch compiles the guards):
parsed with ast, only literals, shape symbols and allowed functions, with numbers and powers bounded."""

from __future__ import annotations

import ast
import re
from typing import Any

from evaluator.pt2_zip import UnsafeArchive

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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
