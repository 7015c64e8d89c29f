"""docs/your-model.md is true: its Python and bash blocks run, in order, in an empty folder, and the numbers it
promises hold (the same robust accuracy with and without the source; the described Keras-style copy assesses
with no flags)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PAGE = ROOT / "docs" / "your-model.md"
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    return [(kind, text) for kind, text in BLOCK.findall(PAGE.read_text())]


def test_the_page_has_its_steps() -> None:
    kinds = [kind for kind, _ in blocks()]
    assert kinds == ["python", "bash", "bash", "python", "bash", "bash", "bash"]


@pytest.mark.train
def test_every_command_of_the_page_runs(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    evaluator = [sys.executable, "-m", "evaluator"]
    for number, (kind, text) in enumerate(blocks(), start=1):
        if kind == "python":
            script = tmp_path / f"step{number}.py"
            script.write_text(text)
            done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert done.returncode == 0, (number, done.stderr[-2000:])
            continue
        for line in text.strip().splitlines():
            words = shlex.split(line)
            assert words[0] == "evaluator", line
            done = subprocess.run([*evaluator, *words[1:], "--threads", "1"] if words[1] == "assess" else [*evaluator, *words[1:]],
                                  cwd=tmp_path, env=env, capture_output=True, text=True)
            assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
    with_source, without_source, keras, keras_int8 = (
        json.loads((tmp_path / name).read_text())["models"][0]
        for name in ("with_source.json", "without_source.json", "keras_style.json", "keras_int8.json"))
    assert with_source["gradients"] == "source" and without_source["gradients"] == "converted graph"
    assert keras["gradients"] == "converted graph" and keras["dataset"] == "fashion-mnist"
    worst = [model["robustness"][0]["robust_accuracy"] for model in (with_source, without_source, keras)]
    assert max(worst) - min(worst) <= 0.01, worst
    child = json.loads((tmp_path / "my_cnn_filter-l1_cr2.json").read_text())
    assert child["export_check"]["top1_agreement"] == 1.0 and child["metadata"]["architecture"]["name"] == "exported"
    assert keras_int8["precision"]["name"] == "int8" and keras_int8["gradients"] == "converted graph"
    assert abs(keras_int8["float_accuracy_drop"]) <= 0.01 and not keras_int8["placement"]["fallbacks"]
    assert abs(keras_int8["robustness"][0]["robust_accuracy"] - keras["robustness"][0]["robust_accuracy"]) <= 0.03
    assert all(check["passed"] for check in keras_int8["checks"]), keras_int8["checks"]
    rows = json.loads((tmp_path / "my_sweep" / "table.json").read_text())["rows"]
    assert [(row["method"], row["target_rate"]) for row in rows] == [("none", 1.0), ("filter-l1", 2.0)]
    assert all(check["passed"] for model in (with_source, without_source, keras) for check in model["checks"]), \
        [(check["name"], check["detail"]) for model in (with_source, without_source, keras) for check in model["checks"]]
