"""`evaluator assess --policy`: exit 0 pass, 1 fail, 2 error; verdict in JSON, Markdown and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app

from conftest import ROOT, ZOO_CHILD

QUICK = ("--samples", "50", "--attacks", "apgd-ce-linf:steps=5,square-linf:queries=50")


def policy(tmp_path: Path, clean_min: float, extra: str = "") -> Path:
    path = tmp_path / f"policy_{clean_min}.toml"
    path.write_text(f"""
[policy]
name = "test"

[[rule]]
metric = "clean_accuracy"
min = {clean_min}

[[rule]]
metric = "robust_accuracy"
norm = "Linf"
epsilon = "4/255"
min = 0.0

[[rule]]
metric = "latency_p99_ms"
batch = 4
max = 1e6
{extra}""")
    return path


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["assess", *map(str, args)])
    return result.exit_code, result.output


@pytest.mark.parametrize(("clean_min", "code"), [(0.5, 0), (0.99, 1)])
def test_passing_and_failing_policies(tmp_path: Path, clean_min: float, code: int) -> None:
    out = {name: tmp_path / name for name in ("v.json", "v.md", "v.xml")}
    exit_code, output = run(ZOO_CHILD, *QUICK, "--policy", policy(tmp_path, clean_min), "--json", out["v.json"],
                            "--markdown", out["v.md"], "--junit", out["v.xml"])
    assert exit_code == code, output
    model = json.loads(out["v.json"].read_text())["models"][0]
    assert model["signoff"]["passed"] is (code == 0)
    outcomes = {outcome["metric"]: outcome for outcome in model["signoff"]["outcomes"]}
    clean_low, clean_high = outcomes["clean_accuracy"]["interval"]  # 95% Wilson interval on the 10,000 test images
    assert clean_low < model["clean_accuracy"] < clean_high and outcomes["clean_accuracy"]["threshold_within_interval"] is False
    robust_low, _ = outcomes["robust_accuracy"]["interval"]  # on the 50 attacked images
    assert robust_low < model["robustness"][0]["robust_accuracy"] and model["signoff"]["within_interval"] == 0
    assert outcomes["latency_p99_ms"]["interval"] is None
    assert "4" in model["latency_by_batch"]  # the policy's batch size was timed
    assert any(abs(w["epsilon"] - 4 / 255) < 1e-12 for w in model["robustness"])  # and its epsilon attacked
    suite = ElementTree.parse(out["v.xml"]).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", 0)) == 3 and int(suite.get("failures", 0)) == (code == 1)
    failures = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ([] if code == 0 else [failures[0].get("name")])
    assert ("PASS" if code == 0 else "FAIL") in out["v.md"].read_text()


@pytest.mark.parametrize("text", ["[[rule]]\nmetric = 'clean_accuracy'\n", "[[rule]]\nmetric = 'speed'\nmin = 1\n", "not toml ["])
def test_malformed_policy_is_one_line_and_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    exit_code, output = run(ZOO_CHILD, *QUICK, "--policy", path, "--junit", tmp_path / "v.xml")
    assert exit_code == 2 and len(output.strip().splitlines()) == 1 and "error" in output, output
    assert not (tmp_path / "v.xml").exists()


def test_junit_without_policy_is_refused(tmp_path: Path) -> None:
    exit_code, output = run(ZOO_CHILD, *QUICK, "--junit", tmp_path / "v.xml")
    assert exit_code == 2 and "--policy" in output


def test_the_shipped_edge_policy_loads() -> None:
    from evaluator.policy import load_policy

    edge = load_policy(ROOT / "policies" / "edge.toml")
    assert edge.latency_batches() == (1,) and "Linf" in edge.epsilons()


def test_report_formats_by_name(tmp_path: Path) -> None:
    """--report FORMAT=PATH writes any registered format; the CSV is the table's, one row per model."""
    import csv

    from evaluator.report.writers import report_writers

    assert {"json", "csv", "markdown", "junit"} <= set(report_writers())
    table, verdict = tmp_path / "t.csv", tmp_path / "v.md"
    exit_code, output = run(ZOO_CHILD, *QUICK, "--policy", policy(tmp_path, 0.5), "--report", f"csv={table}",
                            "--report", f"markdown={verdict}")
    assert exit_code == 0, output
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 1 and rows[0]["variant"] == ZOO_CHILD.stem and float(rows[0]["clean_accuracy"]) > 0.8
    assert "PASS" in verdict.read_text()


@pytest.mark.parametrize(("report", "message"), [("html=x.html", "report format 'html' is unknown: use one of csv, json"),
                                                 ("csv", "--report takes FORMAT=PATH"),
                                                 ("junit=v.xml", "writes a sign-off verdict: it needs --policy")])
def test_bad_report_requests_are_one_line_and_exit_2(tmp_path: Path, report: str, message: str) -> None:
    exit_code, output = run(ZOO_CHILD, *QUICK, "--report", report.replace("=", f"={tmp_path}/", 1))
    assert exit_code == 2 and message in output and not list(tmp_path.iterdir())
