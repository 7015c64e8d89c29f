"""Renderers and result types load without the engine: importing them pulls in no attack module, no ONNX Runtime, no
onnx and no torch (each import checked in a fresh interpreter, from sys.modules)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

LIGHT_MODULES = ("evaluator.results", "evaluator.assess_config", "evaluator.report.terminal", "evaluator.report.html",
                 "evaluator.report.plots", "evaluator.report.signoff", "evaluator.table", "evaluator.policy",
                 "evaluator.scenario", "evaluator.default_attacks", "evaluator.norms", "evaluator.catalogue", "evaluator.input_options", "evaluator.report.writers",
                 "evaluator.report.json_report", "evaluator.report.csv_report", "evaluator.report.markdown_report",
                 "evaluator.report.junit_report")
HEAVY = ("evaluator.attacks", "evaluator.runtime", "onnxruntime", "onnx", "torch")  # packages and their submodules


def test_every_report_format_loads_without_the_engine() -> None:
    probe = (f"import json, sys; from evaluator.report.writers import report_writers; report_writers(); heavy = {HEAVY!r}; "
             "print(json.dumps(sorted(n for n in sys.modules if any(n == h or n.startswith(h + '.') for h in heavy))))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(completed.stdout) == []


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_a_renderer_or_result_type_loads_without_the_engine(module: str) -> None:
    probe = (f"import json, sys, {module}; heavy = {HEAVY!r}; "
             "print(json.dumps(sorted(n for n in sys.modules if any(n == h or n.startswith(h + '.') for h in heavy))))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = json.loads(completed.stdout)
    assert loaded == [], f"{module} loads {loaded[:5]}"
