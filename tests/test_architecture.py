"""The shape of the code: the library (evaluator/ outside evaluator/app) stands on its own, the applications
(evaluator/app) are the only code under evaluator/ that imports the PyTorch side (exporters), modules stay short
and no modules import each other in a circle. Read from the source with the ast module: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("evaluator", "exporters")
APP = "evaluator.app"
ENTRY_POINT = "evaluator.__main__"  # `python -m evaluator`: runs the application's main, and nothing imports it
MAX_LINES = 400
# Modules allowed over MAX_LINES (none now). This list only shrinks: a module that fits is taken off it.
LONG_MODULES_TO_SPLIT: set[str] = set()
# Known import cycles (each a set of modules that import one another, directly or through others), to break in
# issue 16. This list only shrinks.
KNOWN_CYCLES: list[frozenset[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> dict[str, Path]:
    """{dotted module name: file} of every module of the two packages."""
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_names(path: Path) -> list[str]:
    """Every module an import statement of the file names, at any depth (inside functions too), made absolute:
    `from a.b import c` gives a.b.c (c may be a module or a name in a.b: `imports` tells them apart)."""
    name = module_name(path)
    package = name if is_package(path) else name.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names += [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the two packages that the file imports: for each name, the longest prefix that is a module."""
    found = set()
    for name in imported_names(path):
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in modules:
                found.add(candidate)
                break
    return found - {module_name(path)}


def imports_of_package(path: Path, package: str) -> list[str]:
    """The import statements' names that are `package` or inside it."""
    return sorted({name for name in imported_names(path) if name == package or name.startswith(package + ".")})


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_library_never_imports_the_applications_or_the_pytorch_side() -> None:
    offenders = {}
    for module, path in source_files().items():
        if in_package(module, "evaluator") and not in_package(module, APP) and module != ENTRY_POINT:
            names = imports_of_package(path, APP) + imports_of_package(path, "exporters")
            if names:
                offenders[str(path.relative_to(ROOT))] = names
    assert offenders == {}, f"library modules importing evaluator.app or exporters: {offenders}"


def test_the_pytorch_side_never_imports_the_applications() -> None:
    offenders = {str(path.relative_to(ROOT)): imports_of_package(path, APP)
                 for module, path in source_files().items() if in_package(module, "exporters")}
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_applications_are_where_the_library_meets_the_pytorch_side() -> None:
    """The check above would pass vacuously if the names were wrong: the applications do import exporters."""
    users = [module for module, path in source_files().items()
             if in_package(module, APP) and imports_of_package(path, "exporters")]
    assert users, "no module of evaluator.app imports exporters: are the package names in this test still right?"


def test_only_the_applications_import_rich() -> None:
    """Library and PyTorch side report progress through evaluator.progress; rich bars are the applications' (evaluator/app)
    and the reports' (evaluator/report)."""
    offenders = {}
    for module, path in source_files().items():
        if not (in_package(module, APP) or in_package(module, "evaluator.report")):
            names = imports_of_package(path, "rich")
            if names:
                offenders[str(path.relative_to(ROOT))] = names
    assert offenders == {}, f"modules importing rich outside evaluator.app and evaluator.report: {offenders}"


def test_library_errors_name_settings_not_flags() -> None:
    """An EvaluatorError raised below the applications names the setting (`samples must ...`, field="samples"); the
    CLI shows the flag (evaluator/app/cli.py with_flag), so the Python API never reads about flags it has not got."""
    import re

    flag = re.compile(r"(^|[\s(`'\"])--[a-z]")
    offenders = []
    for module, path in source_files().items():
        if in_package(module, APP):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "EvaluatorError":
                texts = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for text in texts if flag.search(text)]
    assert offenders == [], f"library errors naming a command-line flag: {offenders}"


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_is_over_400_lines() -> None:
    long = {str(path.relative_to(ROOT)): line_count(path) for path in source_files().values()
            if line_count(path) > MAX_LINES}
    unknown = {path: lines for path, lines in long.items() if path not in LONG_MODULES_TO_SPLIT}
    assert unknown == {}, f"modules over {MAX_LINES} lines: {unknown} (split them)"
    fitting = sorted(LONG_MODULES_TO_SPLIT - set(long))
    assert fitting == [], f"{fitting} fit in {MAX_LINES} lines (or are gone): take them off LONG_MODULES_TO_SPLIT"


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = lowlink[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
            else:
                work.pop()
                if work:
                    lowlink[work[-1][0]] = min(lowlink[work[-1][0]], lowlink[node])
                if lowlink[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_files()
    return {module: imports(path, modules) for module, path in modules.items()}


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}, "f": {"g"}, "g": {"f"}}
    assert sorted(map(sorted, cycles(graph))) == [["a", "b", "c"], ["f", "g"]]


def test_the_import_graph_sees_imports_inside_functions() -> None:
    """evaluator/app/train_commands.py imports exporters only inside its commands (torch loads only when needed)."""
    graph = import_graph()
    assert "exporters.workflows" in graph["evaluator.app.train_commands"]
    assert "evaluator.errors" in graph["evaluator.app.cli"]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    unknown = [sorted(component) for component in found if component not in KNOWN_CYCLES]
    assert unknown == [], f"modules that import each other in a circle: {unknown}"
    gone = [sorted(component) for component in KNOWN_CYCLES if component not in found]
    assert gone == [], f"{gone} no longer form a cycle: take them off KNOWN_CYCLES"
