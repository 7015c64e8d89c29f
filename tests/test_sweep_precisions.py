"""`evaluator sweep --precisions fp32,int8`: every variant also quantized, cached and resumable like the rest; its
rows equal `evaluator assess --json` of the same artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app

from conftest import ROOT, ZOO_PARENT
from interrupt import kill_after
from test_sweep import comparable

ATTACKS = ["--attacks", "pgd-linf:steps=5,square-linf:queries=40", "--eps", "8/255"]
SMALL = ["--source", str(ZOO_PARENT.with_suffix(".pt2")), "--methods", "filter-l1,unstructured-global-magnitude",
         "--rates", "1,4", "--precisions", "fp32,int8", "--finetune-epochs", "0", "--samples", "60", *ATTACKS,
         "--no-latency"]


def sweep_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "evaluator", "sweep", *SMALL, "--out", str(out)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("precisions") / "results"
    result = subprocess.run(sweep_command(out), capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.train
def test_every_variant_in_every_precision(uninterrupted: Path) -> None:
    table = json.loads((uninterrupted / "table.json").read_text())
    variants = [(row["method"], row["target_rate"], row["precision"]) for row in table["rows"]]
    assert variants == [("none", 1.0, "fp32"), ("none", 1.0, "int8"), ("filter-l1", 4.0, "fp32"), ("filter-l1", 4.0, "int8"),
                        ("unstructured-global-magnitude", 4.0, "fp32"), ("unstructured-global-magnitude", 4.0, "int8")]
    by_variant = {row["variant"]: row for row in table["rows"]}
    for row in table["rows"]:
        assert row["fallback_kernels"] == 0 and set(row["robust_accuracy"]) == {"Linf@0.03137"}
        if row["precision"] == "fp32":
            assert row["float_accuracy_drop"] is None
            continue
        float_row = by_variant[row["variant"].removesuffix("_int8")]
        assert row["float_accuracy_drop"] == pytest.approx(float_row["clean_accuracy"] - row["clean_accuracy"])
        assert abs(row["float_accuracy_drop"]) <= 0.01  # within 1 point of its float parent
        # weights a quarter of the size; on the pruned 15k-weight variants the graph's fixed bytes (nodes, metadata,
        # per-channel scales) weigh more
        assert row["size_bytes"] * (3.5 if row["method"] == "none" else 2.5) <= float_row["size_bytes"]
        # the int8 graph's own gradients, then the float source's; --no-latency: no speed-up
        assert row["gradients"] == ["converted graph", "float source"] and row["speedup_vs_float"] is None
        card = json.loads((uninterrupted / "models" / f"{row['variant']}.json").read_text())
        assert card["metadata"]["precision"]["calibration"] == {"dataset": "fashion-mnist", "split": "train", "samples": 512,
                                                               "seed": 0, "method": "minmax"}
    assert "vs fp32: drop pts, speed-up" in (uninterrupted / "table.md").read_text()


@pytest.mark.train
def test_rows_match_assess_json_of_the_same_int8_artifact(uninterrupted: Path, tmp_path: Path) -> None:
    from evaluator.results import Assessment
    from evaluator.table import table_row

    table = json.loads((uninterrupted / "table.json").read_text())
    row = next(r for r in table["rows"] if r["method"] == "filter-l1" and r["precision"] == "int8")
    result = CliRunner().invoke(app, ["assess", row["path"], "--samples", "60", *ATTACKS, "--no-latency",
                                      "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    assessment = Assessment.from_dict(json.loads((tmp_path / "a.json").read_text()))
    assert json.loads(json.dumps(table_row(assessment.models[0]).to_dict())) == row


@pytest.mark.train
def test_killed_after_the_first_quantization_resumes_to_the_same_results(uninterrupted: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    kill_after(sweep_command(out), out / "models", "*_int8.json", ROOT)
    resumed = subprocess.run(sweep_command(out), capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert "cached" in resumed.stderr
    assert comparable(out) == comparable(uninterrupted)
    for name in ("lenet5_fmnist_int8.onnx", "lenet5_fmnist_filter-l1_cr4_int8.onnx"):
        assert (out / "models" / name).read_bytes() == (uninterrupted / "models" / name).read_bytes()
