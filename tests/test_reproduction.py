"""The reproduction page: each study claim's verdict follows its rule on the measured rows; the page shows the table's numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evaluator.app.reproduction import (by_method, finding_clean, finding_filter_collapse, finding_scenario,
                                        finding_speed, finding_sweet_spots, main)
from evaluator.results import TableRow
from evaluator.stats import share_interval


def row_data(method: str, rate: float, clean: float, robust: dict[str, float] | None = None, throughput: float = 1000.0,
             gzip: int = 1000, median: dict[str, float] | None = None) -> dict[str, Any]:
    """A table.json row of table schema 1.0 (no intervals, no attacked samples)."""
    variant = "parent" if method == "none" else f"{method}_cr{rate:g}"
    return {"variant": variant, "method": method, "target_rate": rate, "achieved_rate": rate, "params": 100,
            "nonzero_params": int(100 / rate), "macs": 1000, "size_bytes": 2000, "gzip_bytes": gzip,
            "provider": "CPUExecutionProvider", "latency_p50_ms": 1.0, "latency_p99_ms": 1.2, "throughput_per_s": throughput,
            "throughput_batch": 256, "clean_accuracy": clean, "accuracy_drop": None, "robust_accuracy": robust or {},
            "median_distance": median or {}, "curves": {}, "checks_failed": [], "sha256": "0", "path": f"/x/{variant}.onnx"}


def row(method: str, rate: float, clean: float, robust: dict[str, float] | None = None, throughput: float = 1000.0,
        gzip: int = 1000, median: dict[str, float] | None = None) -> TableRow:
    return TableRow.from_dict(row_data(method, rate, clean, robust, throughput, gzip, median))


PARENT_DATA = row_data("none", 1.0, 0.90, {"Linf@0.01": 0.6, "Linf@0.02": 0.4, "Linf@0.03": 0.2})
PARENT = TableRow.from_dict(PARENT_DATA)
UNSTRUCTURED = "unstructured-global-magnitude"


def unstructured(cleans: dict[float, float]) -> list[TableRow]:
    return [row(UNSTRUCTURED, rate, clean) for rate, clean in cleans.items()]


def test_by_method_starts_every_method_at_the_parent() -> None:
    rows = [PARENT, row("a", 4.0, 0.8), row("a", 2.0, 0.85), row("b", 2.0, 0.7)]
    table = by_method(rows)
    assert list(table) == ["a", "b"]
    assert list(table["a"]) == [1.0, 2.0, 4.0] and table["a"][1.0] is PARENT and table["b"][1.0] is PARENT


@pytest.mark.parametrize("cleans, verdict", [({2.0: 0.90, 4.0: 0.89, 8.0: 0.885}, "confirmed"),
                                             ({2.0: 0.89, 4.0: 0.87, 8.0: 0.80}, "partly"),
                                             ({2.0: 0.85, 4.0: 0.80, 8.0: 0.70}, "contradicted")])
def test_clean_accuracy_claim(cleans: dict[float, float], verdict: str) -> None:
    assert finding_clean([PARENT, *unstructured(cleans)]).verdict == verdict


def test_claims_without_their_variants_have_no_data() -> None:
    assert finding_clean([PARENT, row("filter-l1", 2.0, 0.9)]).verdict == "no data"
    assert finding_filter_collapse([PARENT, *unstructured({16.0: 0.5})], []).verdict == "no data"
    assert finding_sweet_spots([row("a", 2.0, 0.9)]).verdict == "no data"
    stopped = finding_filter_collapse([PARENT, row("filter-global-magnitude", 2.0, 0.8)], ["filter-global-magnitude stopped at rate 16: too few channels"])
    assert stopped.verdict == "no data" and "too few channels" in stopped.evidence


def test_sweet_spots_use_the_middle_budget_of_each_norm() -> None:
    better = row("a", 4.0, 0.88, {"Linf@0.01": 0.5, "Linf@0.02": 0.45, "Linf@0.03": 0.1})  # middle key: Linf@0.02
    worse = row("b", 2.0, 0.88, {"Linf@0.01": 0.7, "Linf@0.02": 0.35, "Linf@0.03": 0.3})
    finding = finding_sweet_spots([PARENT, better, worse])
    assert finding.verdict == "confirmed" and "Linf@0.02: 1/2 methods (a)" in finding.evidence
    assert finding_sweet_spots([PARENT, worse]).verdict == "contradicted"


def test_filter_collapse_takes_the_highest_rate() -> None:
    rows = [PARENT, row("filter-global-magnitude", 16.0, 0.35), row("filter-global-magnitude", 64.0, 0.12),
            row("filter-local-magnitude", 32.0, 0.5)]
    finding = finding_filter_collapse(rows, [])
    assert finding.verdict == "partly" and "12.0% at CR 64" in finding.evidence and "50.0% at CR 32" in finding.evidence


def test_speed_claim_wants_filter_faster_and_the_rest_unchanged() -> None:
    fast_filter = row("filter-l1", 8.0, 0.8, throughput=2000.0, gzip=200)
    same_unstructured = row(UNSTRUCTURED, 8.0, 0.89, throughput=1050.0, gzip=300)
    assert finding_speed([PARENT, fast_filter, same_unstructured]).verdict == "confirmed"
    fast_unstructured = row(UNSTRUCTURED, 8.0, 0.89, throughput=1500.0)
    assert finding_speed([PARENT, fast_filter, fast_unstructured]).verdict == "partly"
    assert finding_speed([PARENT, row("filter-l1", 8.0, 0.8, throughput=1000.0)]).verdict == "contradicted"
    assert finding_speed([replace(PARENT, throughput_per_s=None), fast_filter]).verdict == "no data"


def test_scenario_claim_needs_a_crossing() -> None:
    robust = row("a", 4.0, 0.85, {"Linf@0.01": 0.7, "Linf@0.02": 0.6, "Linf@0.03": 0.5})
    finding = finding_scenario([PARENT, robust])
    assert finding.verdict == "confirmed" and "a_cr4" in finding.evidence and "parent" in finding.evidence
    dominated = row("a", 4.0, 0.85, {"Linf@0.01": 0.5, "Linf@0.02": 0.3, "Linf@0.03": 0.1})
    assert finding_scenario([PARENT, dominated]).verdict == "contradicted"


def test_scenario_evidence_says_when_a_lead_is_not_clear() -> None:
    """The parent (0.9 clean, 0.4 robust) and a (0.85, 0.6) cross at r = 0.2; on 20 attacked images a's lead at r = 0.6
    (0.7 against 0.6) is inside a's 95% interval, on 1,000 it is clear."""
    def measured(base: TableRow, attacked: int) -> TableRow:
        return replace(base, clean_accuracy_ci=share_interval(base.clean_accuracy, 10_000),
                       robust_accuracy_ci={key: share_interval(value, attacked) for key, value in base.robust_accuracy.items()})

    a = row("a", 4.0, 0.85, {"Linf@0.01": 0.7, "Linf@0.02": 0.6, "Linf@0.03": 0.5})
    few = finding_scenario([measured(PARENT, 20), measured(a, 20)])
    assert few.verdict == "confirmed" and few.evidence == (
        "at Linf@0.02: r 0.00-0.20: parent; r 0.20-1.00: a_cr4 (lead over parent at r = 60%: 10.0 points, within the "
        "95% interval: not a clear difference)")
    many = finding_scenario([measured(PARENT, 1000), measured(a, 1000)])
    assert many.evidence == "at Linf@0.02: r 0.00-0.20: parent; r 0.20-1.00: a_cr4"


def test_page_from_results_folders(tmp_path: Path) -> None:
    dead = {**row_data("kernel-local-random", 8.0, 0.1), "checks_failed": ["gradients-nonzero", "unbounded-success"]}
    rows = [PARENT_DATA, row_data(UNSTRUCTURED, 2.0, 0.905), row_data(UNSTRUCTURED, 4.0, 0.8912),
            row_data("filter-l1", 2.0, 0.7, throughput=1800.0), dead]
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "table.json").write_text(json.dumps({"config": {"samples": 300, "finetune_epochs": 2, "retime_rounds": 3}, "rows": rows,
                                                   "failures": [], "environment": {"python": "3.11"}}))
    page = tmp_path / "docs" / "reproduction.md"
    assert main([str(folder), str(tmp_path / "absent"), "--out", str(page), "--remark", "Measured on a busy machine."]) == 0
    text = page.read_text()
    assert f"| {UNSTRUCTURED} | 90.0 | 90.5 | 89.1 | - |" in text  # clean accuracy (%) pivot, CR 1, 2, 4, 8
    assert "distances on a seeded sample of 300 test images)." in text  # rows of table schema 1.0: no nesting claimed
    assert "| filter-l1 | 1.00x | 1.80x | - | - |" in text  # throughput relative to the parent
    assert "timed again after the sweep in 3 interleaved rounds" in text
    assert "| kernel-local-random_cr8 | gradients-nonzero, unbounded-success |" in text  # sanity flags
    assert "Not measured yet" in text and "absent" in text and "Measured on a busy machine." in text
    grid = (tmp_path / "docs" / "reproduction" / "parent" / "grid.svg").read_bytes()
    assert grid.startswith(b"<?xml") and b"parent" in grid  # drawn from the rows
    assert "![grid of parent](reproduction/parent/grid.svg)" in text
    data = tmp_path / "docs" / "reproduction" / "parent" / "table.json"
    assert data.read_bytes() == (folder / "table.json").read_bytes() and "(reproduction/parent/table.json)" in text
    # the page's own data folders rebuild the same page, without the sweep's results folder
    rebuilt = tmp_path / "docs" / "rebuilt.md"
    assert main([str(data.parent), str(tmp_path / "absent"), "--out", str(rebuilt), "--remark", "Measured on a busy machine."]) == 0
    assert rebuilt.read_text().replace("rebuilt", "reproduction") == text.replace(str(folder), str(data.parent))
    assert (tmp_path / "docs" / "rebuilt" / "parent" / "grid.svg").read_bytes() == grid


def test_page_says_the_sample_is_nested_for_rows_that_record_it(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    rows = [{**PARENT_DATA, "attacked_samples": 300}, row_data(UNSTRUCTURED, 2.0, 0.9)]
    (folder / "table.json").write_text(json.dumps({"config": {"samples": 300}, "rows": rows, "failures": []}))
    assert main([str(folder), "--out", str(tmp_path / "page.md")]) == 0
    assert ("on a seeded sample of 300 test images: the first of one seeded permutation of the test set, so a smaller "
            "sample is part of a larger one)") in (tmp_path / "page.md").read_text()


def test_page_without_any_results_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "absent"), "--out", str(tmp_path / "page.md")]) == 2
    assert "none of the results folders" in capsys.readouterr().err
    assert not (tmp_path / "page.md").exists()


def test_flagged_variants_are_left_out_of_robustness_claims() -> None:
    masked = replace(row("a", 4.0, 0.85, {"Linf@0.01": 0.9, "Linf@0.02": 0.9, "Linf@0.03": 0.9}), checks_failed=("unbounded-success",))
    assert finding_sweet_spots([PARENT, masked]).verdict == "no data"
    assert finding_scenario([PARENT, masked]).verdict == "contradicted"  # the parent alone is best everywhere
    assert finding_scenario([PARENT, replace(masked, checks_failed=())]).verdict == "confirmed"


def test_page_shows_the_parent_in_every_precision_of_a_precision_sweep(tmp_path: Path) -> None:
    """A sweep of the parent alone in fp32, int8 and fp16 adds its section; the int8 rows of a sweep never join the
    float32 pivots (a method's rate holds one row)."""
    study = tmp_path / "study"
    study.mkdir()
    (study / "table.json").write_text(json.dumps({"config": {"samples": 300}, "rows": [PARENT_DATA, row_data(UNSTRUCTURED, 2.0, 0.9)],
                                                  "failures": [], "environment": {}}))
    reduced = [{**PARENT_DATA, "variant": "parent_int8", "precision": "int8", "clean_accuracy": 0.895, "size_bytes": 500,
                "throughput_per_s": 800.0, "speedup_vs_float": 0.5, "fallback_kernels": 0,
                "robust_accuracy": {"Linf@0.01": 0.61, "Linf@0.02": 0.41, "Linf@0.03": 0.21}},
               {**PARENT_DATA, "variant": "parent_fp16", "precision": "fp16", "size_bytes": 1000, "throughput_per_s": 500.0,
                "fallback_kernels": 3, "checks_failed": ["white-box-strongest"]},
               {**row_data(UNSTRUCTURED, 2.0, 0.1), "variant": f"{UNSTRUCTURED}_cr2_int8", "precision": "int8"}]
    sweep = tmp_path / "precision"
    sweep.mkdir()
    (sweep / "table.json").write_text(json.dumps({"config": {"samples": 300, "calibration_samples": 512,
                                                             "calibration_method": "minmax"},
                                                  "rows": [{**PARENT_DATA, "fallback_kernels": 0}, *reduced],
                                                  "failures": [], "environment": {}}))
    page = tmp_path / "docs" / "reproduction.md"
    assert main([str(study), "--precision", str(sweep), "--out", str(page)]) == 0
    text = page.read_text()
    assert "### The parent in deployment precision" in text and "calibrated on 512 training images, minmax" in text
    assert "| fp32 | 90.0 | 0.0 | 2,000 | 1.00x | 1.00x | 40.0 | 0 | - |" in text
    assert "| int8 | 89.5 | 0.5 | 500 | 4.00x | 0.80x | 41.0 | 0 | - |" in text  # throughput of the rows, side by side
    assert "| fp16 | 90.0 | 0.0 | 1,000 | 2.00x | 0.50x | 40.0 | 3 | white-box-strongest |" in text
    assert f"| {UNSTRUCTURED} | 90.0 | 90.0 |" in text  # the int8 variant's 10 % is not in the float pivot
    data = tmp_path / "docs" / "reproduction" / "parent" / "precision.json"
    assert data.read_bytes() == (sweep / "table.json").read_bytes()
    rebuilt = tmp_path / "docs" / "rebuilt.md"  # from the page's own data
    assert main([str(data.parent), "--precision", str(data), "--out", str(rebuilt)]) == 0
    assert "| int8 | 89.5 | 0.5 | 500 | 4.00x | 0.80x | 41.0 | 0 | - |" in rebuilt.read_text()
