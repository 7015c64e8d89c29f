"""`evaluator sweep`: a small study from the zoo parent, cached and resumable, rows equal to `evaluator assess --json`."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.errors import EvaluatorError
from evaluator.app.sweep_config import make_config

from conftest import ROOT, SMALL, ZOO_PARENT
from interrupt import kill_after



def comparable(out: Path) -> dict[str, object]:
    """The results files of a sweep, with the results folder's own path and the thread count (chosen from the
    machine's load at the start of each run) taken out."""
    table = json.loads((out / "table.json").read_text())
    for row in table["rows"]:
        row.pop("path")
    table["config"].pop("out")
    table.pop("timing")  # how the steps ran and how long each took
    for key in ("threads", "threads_reason"):
        table["environment"].pop(key, None)
    return {"table.json": table, "table.csv": (out / "table.csv").read_text(), "table.md": (out / "table.md").read_text(),
            "figures": {p.name: p.read_bytes() for p in sorted((out / "figures").glob("*.svg"))}}


@pytest.fixture(scope="module")
def uninterrupted(small_sweep: Path) -> Path:
    return small_sweep


@pytest.mark.train
def test_small_sweep_writes_every_result(uninterrupted: Path) -> None:
    table = json.loads((uninterrupted / "table.json").read_text())
    variants = [(row["method"], row["target_rate"]) for row in table["rows"]]
    assert variants == [("none", 1.0), ("filter-l1", 2.0), ("filter-l1", 4.0),
                        ("unstructured-global-magnitude", 2.0), ("unstructured-global-magnitude", 4.0)]
    for row in table["rows"]:
        assert set(row["robust_accuracy"]) == {"Linf@0.01569", "Linf@0.03137"}
        assert row["robust_accuracy"]["Linf@0.03137"] <= row["robust_accuracy"]["Linf@0.01569"] <= row["clean_accuracy"]
        assert row["accuracy_drop"] is not None
        assert row["attacked_samples"] == 60 and set(row["robust_accuracy_ci"]) == set(row["robust_accuracy"])
        low, high = row["robust_accuracy_ci"]["Linf@0.03137"]
        assert low <= row["robust_accuracy"]["Linf@0.03137"] <= high <= row["attacked_clean_accuracy_ci"][1]
    assert table["schema_version"] == "1.3"
    assert "out of the 60 attacked test images" in (uninterrupted / "table.md").read_text()
    parent = json.loads((uninterrupted / "assessments" / f"{ZOO_PARENT.stem}.json").read_text())["models"][0]
    assert parent["samples"]["count"] == 60 and len(parent["robustness"][0]["outcomes"]) == 60
    for name in ("table.csv", "table.md", "report.html", "sweep.json"):
        assert (uninterrupted / name).stat().st_size > 0
    assert len(list((uninterrupted / "figures").glob("*.png"))) >= 2
    assert not list(uninterrupted.rglob("*.tmp")) and not list(uninterrupted.rglob("*.part"))


@pytest.mark.train
def test_rows_match_assess_json_of_the_same_artifacts(uninterrupted: Path, tmp_path: Path) -> None:
    from evaluator.results import Assessment
    from evaluator.table import table_row

    table = json.loads((uninterrupted / "table.json").read_text())
    row = next(r for r in table["rows"] if r["method"] == "filter-l1" and r["target_rate"] == 4.0)
    result = CliRunner().invoke(app, ["assess", row["path"], "--samples", "60", "--attacks", "pgd-linf:steps=5,square-linf:queries=40",
                                      "--eps", "4/255,8/255", "--no-latency", "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    assessment = Assessment.from_dict(json.loads((tmp_path / "a.json").read_text()))
    assert json.loads(json.dumps(table_row(assessment.models[0]).to_dict())) == row


@pytest.mark.train
def test_killed_sweep_resumes_to_the_same_results(uninterrupted: Path, tmp_path: Path) -> None:
    """Kill -9 part-way (after the first pruned model is written), start again: the same results files."""
    out = tmp_path / "results"
    command = [sys.executable, "-m", "evaluator", "sweep", *SMALL, "--out", str(out)]
    kill_after(command, out / "models", "*_cr2.onnx", ROOT)
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(out) == comparable(uninterrupted)


@pytest.mark.train
def test_rerun_is_served_from_the_cache(uninterrupted: Path) -> None:
    result = CliRunner().invoke(app, ["sweep", *SMALL, "--out", str(uninterrupted)])
    assert result.exit_code == 0 and result.output.count("cached") >= 5, result.output


@pytest.mark.train
def test_retime_replaces_latency_in_interleaved_rounds(uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--retime-rounds 2 visits every variant once per round (the second in reverse order), and the round with the
    lowest median replaces the assessment's timing."""
    out = tmp_path / "results"
    shutil.copytree(uninterrupted, out)
    timed = [option for option in SMALL if option != "--no-latency"]
    first = CliRunner().invoke(app, ["sweep", *timed, "--out", str(out)])  # assessed again, now with latency
    assert first.exit_code == 0, first.output
    visits: list[tuple[str, int]] = []

    def one_millisecond_per_sample(classifier: object, batch_size: int, *args: object, **kwargs: object) -> list[float]:
        visits.append((classifier.path.name, batch_size))  # type: ignore[attr-defined]
        slow_spell = len(visits) <= 3  # the first round's first visits are slower: that round is not kept
        return [batch_size * (3e-3 if slow_spell else 1e-3)] * 2

    monkeypatch.setattr("evaluator.latency.time_batch", one_millisecond_per_sample)
    second = CliRunner().invoke(app, ["sweep", *timed, "--retime-rounds", "2", "--out", str(out)])
    assert second.exit_code == 0 and second.output.count("cached") >= 5, second.output
    rounds = [visits[:len(visits) // 2], visits[len(visits) // 2:]]
    assert [name for name, _ in rounds[0]][::2] == [name for name, _ in rounds[1]][::-2] and len({name for name, _ in rounds[0]}) == 5
    table = json.loads((out / "table.json").read_text())
    assert [(row["latency_p50_ms"], row["throughput_per_s"]) for row in table["rows"]] == [(1.0, 1000.0)] * 5
    for assessment in (out / "assessments").glob("*.json"):
        data = json.loads(assessment.read_text())
        assert data["latency_retimed"] == {"rounds": 2, "variants": 5, "node": platform.node()}
        assert data["models"][0]["latency_by_batch"]["256"]["runs"] == 2  # one round's runs
    with pytest.raises(EvaluatorError, match="retime_rounds must be"):
        make_config({"retime_rounds": -1}).validate()


def test_sweep_file_and_bad_settings(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text('[sweep]\nsource = "lenet5"\nmethods = ["filter-l1"]\nrates = [1, 2]\neps = 1\n')
    result = CliRunner().invoke(app, ["sweep", "--config", str(path)])
    assert result.exit_code == 2 and "unknown sweep setting 'eps'" in result.output
    for values, message in (({"rates": "0.5"}, "rates must be"), ({"methods": "prune-all"}, "unknown pruning method"),
                            ({"source": "resnet50"}, "source must be"), ({"samples": "many"}, "not a valid int"),
                            ({"attacks": "nothing"}, "unknown attack"), ({"rate_tolerance": "2"}, "rate_tolerance must be")):
        with pytest.raises(EvaluatorError, match=message):
            make_config(values).validate()


@pytest.mark.train
def test_reproduction_page_shows_the_sweeps_numbers(uninterrupted: Path, tmp_path: Path) -> None:
    from evaluator.app.reproduction import main as write_page

    page = tmp_path / "reproduction.md"
    assert write_page([str(uninterrupted), "--out", str(page)]) == 0
    text = page.read_text()
    rows = json.loads((uninterrupted / "table.json").read_text())["rows"]
    parent = next(row for row in rows if row["method"] == "none")
    for method in ("filter-l1", "unstructured-global-magnitude"):
        cells = [f"{100 * parent['clean_accuracy']:.1f}"] + [f"{100 * row['clean_accuracy']:.1f}" for row in rows if row["method"] == method]
        assert f"| {method} | " + " | ".join(cells) + " |" in text
    assert (tmp_path / "reproduction" / parent["variant"] / "grid.svg").read_bytes() == (uninterrupted / "figures" / "grid.svg").read_bytes()


def test_a_sweep_passes_every_assessment_setting_on() -> None:
    """Every AssessConfig field but the per-model ones is a sweep setting of the same name and default, and reaches
    the variants' assessments (cascade and batch sizes too)."""
    from dataclasses import fields

    from evaluator.app.sweep_config import ASSESS_FIELDS, PER_MODEL_FIELDS, SweepConfig, make_config
    from evaluator.assess_config import AssessConfig

    assert set(ASSESS_FIELDS) == {f.name for f in fields(AssessConfig)} - set(PER_MODEL_FIELDS)
    defaults = SweepConfig().assess_config()
    assert all(getattr(defaults, name) == getattr(AssessConfig(), name) for name in ASSESS_FIELDS if name != "dataset")
    config = make_config({"cascade": False, "batch_size": 64, "throughput_batch": 32, "samples": 7}).assess_config()
    assert (config.cascade, config.batch_size, config.throughput_batch, config.samples) == (False, 64, 32, 7)
