"""MLflow tracking (`--mlflow`, evaluator/tracking.py): `assess` and a small sweep logged to a local folder store and
read back with mlflow.search_runs (metrics equal to the JSON reports), and bad tracking URIs refused before any work."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.errors import EvaluatorError
from evaluator.results import ModelAssessment
from evaluator.table import table_row
from evaluator.tracking import RunRecord, log_runs, tracking_target

from conftest import ROOT, ZOO_CHILD, ZOO_PARENT

mlflow = pytest.importorskip("mlflow")
pandas = pytest.importorskip("pandas")  # mlflow.search_runs gives a DataFrame

ATTACKS = ["--attacks", "pgd-linf:steps=5,square-linf:queries=40"]
SMALL_SWEEP = ["--source", str(ZOO_PARENT.with_suffix(".pt2")), "--methods", "filter-l1", "--rates", "1,2",
               "--finetune-epochs", "0", "--samples", "20", *ATTACKS, "--eps", "4/255,8/255", "--no-latency", "--threads", "1"]


@pytest.fixture(autouse=True)
def mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a folder store back needs MLflow 3's opt-in (the evaluator sets it only while it logs); no telemetry."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def invoke(*args: Any):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(arg) for arg in args])


def runs_of(store: Path, experiment: str) -> Any:
    """The experiment's runs as mlflow.search_runs gives them (a pandas DataFrame, one row per run)."""
    mlflow.set_tracking_uri(store.as_uri())
    return mlflow.search_runs(experiment_names=[experiment])


def metric_columns(run: Any) -> dict[str, float]:
    return {name.removeprefix("metrics."): value for name, value in run.items()
            if name.startswith("metrics.") and value == value}  # NaN: a metric of another run


def expected_metrics(row: dict[str, Any]) -> dict[str, float]:
    """A table row's numbers (table.json), as the runs name them."""
    names = ("clean_accuracy", "accuracy_drop", "attacked_clean_accuracy", "latency_p50_ms", "latency_p99_ms",
             "throughput_per_s", "size_bytes", "gzip_bytes", "params", "nonzero_params", "macs", "achieved_rate",
             "float_accuracy_drop", "speedup_vs_float", "fallback_kernels")
    metrics = {name: row[name] for name in names if row.get(name) is not None}
    metrics |= {f"robust_accuracy_{key.replace('@', '_')}": value for key, value in row["robust_accuracy"].items()}
    metrics |= {f"median_distance_{norm}": value for norm, value in row["median_distance"].items() if value is not None}
    return metrics


@pytest.mark.slow
def test_assess_logs_one_run_per_model_with_the_reports_numbers(tmp_path: Path) -> None:
    store, report = tmp_path / "mlruns", tmp_path / "report.json"
    result = invoke("assess", ZOO_PARENT, ZOO_CHILD, "--samples", "20", "--no-latency", *ATTACKS, "--threads", "1",
                    "--json", report, "--mlflow", f"file:{store}", "--mlflow-experiment", "zoo")
    assert result.exit_code == 0, result.output
    assert f"logged 2 MLflow runs to {store.as_uri()}" in result.output
    data = json.loads(report.read_text())
    runs = runs_of(store, "zoo")
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}
    for model in data["models"]:
        name = Path(model["path"]).stem
        run = runs[runs["tags.mlflow.runName"] == name].iloc[0]
        metrics = metric_columns(run)
        assert metrics == expected_metrics(table_row(ModelAssessment.from_dict(model)).to_dict())  # every number
        assert metrics["clean_accuracy"] == model["clean_accuracy"] and metrics["size_bytes"] == model["size_bytes"]
        assert metrics["params"] == model["params"]
        assert {f"robust_accuracy_{w['norm']}_{w['epsilon']:.4g}": w["robust_accuracy"] for w in model["robustness"]} == \
            {key: value for key, value in metrics.items() if key.startswith("robust_accuracy_")}
        assert metrics.get("accuracy_drop") == model["accuracy_drop"]
        assert run["params.attacks"] == "pgd-linf:steps=5,square-linf:queries=40" and run["params.seed"] == "0"
        assert run["params.samples"] == "20" and run["params.precision"] == "fp32"
        assert run["tags.sha256"] == model["sha256"] and run["tags.evaluator_version"] == data["environment"]["evaluator"]
        assert run["tags.provider"] == model["provider"] and pandas.isna(run.get("tags.mlflow.parentRunId"))
        artifacts = {entry.path for entry in mlflow.MlflowClient().list_artifacts(run["run_id"])}
        assert artifacts == {"assessment.json", "card"}
        logged = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run["run_id"], artifact_path="assessment.json",
                                                                     dst_path=str(tmp_path / name))).read_text())
        assert logged["models"] == [model]
    child = runs[runs["tags.mlflow.runName"] == ZOO_CHILD.stem].iloc[0]
    assert child["params.method"] == "filter-l1" and child["params.rate"] == "4.0" and child["tags.parent"] == ZOO_PARENT.name
    assert metric_columns(child)["accuracy_drop"] > 0


@pytest.mark.train
def test_sweep_logs_a_parent_run_nesting_one_run_per_row(tmp_path: Path) -> None:
    out, store = tmp_path / "results", tmp_path / "store"
    result = invoke("sweep", *SMALL_SWEEP, "--out", out, "--mlflow", store)
    assert result.exit_code == 0, result.output
    table = json.loads((out / "table.json").read_text())
    runs = runs_of(store, "evaluator")
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1 and len(runs) == 1 + len(table["rows"]) == 3
    sweep = parents.iloc[0]
    assert sweep["params.methods"] == "filter-l1" and sweep["params.rates"] == "1.0,2.0" and sweep["params.samples"] == "20"
    assert sweep["tags.parent"] == ZOO_PARENT.name and metric_columns(sweep) == {"variants": 2.0, "failures": 0.0}
    client = mlflow.MlflowClient()
    artifacts = {entry.path for entry in client.list_artifacts(sweep["run_id"])}
    assert {"sweep.json", "table.csv", "table.json", "table.md", "report.html", "figures"} <= artifacts
    assert {Path(entry.path).name for entry in client.list_artifacts(sweep["run_id"], "figures")} == \
        {path.name for path in (out / "figures").iterdir()}
    children = runs[runs["tags.mlflow.parentRunId"] == sweep["run_id"]]
    for row in table["rows"]:
        run = children[children["tags.mlflow.runName"] == row["variant"]].iloc[0]
        assert metric_columns(run) == expected_metrics(row)
        assert run["params.method"] == row["method"] and float(run["params.rate"]) == row["target_rate"]
        assert run["tags.sha256"] == row["sha256"]
        assert {entry.path for entry in client.list_artifacts(run["run_id"])} == {f"{row['variant']}.json", "card"}
    # served from the cache, the sweep is logged again: a second parent run
    again = invoke("sweep", *SMALL_SWEEP, "--out", out, "--mlflow", store)
    assert again.exit_code == 0, again.output
    runs = runs_of(store, "evaluator")
    assert len(runs) == 6 and runs["tags.mlflow.parentRunId"].isna().sum() == 2


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bad_uris(tmp_path: Path) -> list[str]:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    return ["::bad", "ftp://example.org/mlruns", f"file:{a_file}/mlruns", str(a_file), "file:",
            f"file:{tmp_path}",  # a folder of other files, not a store
            f"http://127.0.0.1:{closed_port()}"]


def one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_bad_tracking_uri_stops_assess_before_any_work(tmp_path: Path) -> None:
    for uri in bad_uris(tmp_path):
        line = one_error_line(invoke("assess", ZOO_PARENT, "--json", tmp_path / "r.json", "--mlflow", uri))
        assert line.startswith("error: --mlflow") and ("unreachable" in line if uri.startswith("http") else True), line
        assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file"], uri
    line = one_error_line(invoke("assess", ZOO_PARENT, "--mlflow", tmp_path / "x", "--mlflow-experiment", " "))
    assert "--mlflow-experiment" in line and not (tmp_path / "x").exists()


def test_a_bad_tracking_uri_stops_the_sweep_before_it_writes(tmp_path: Path) -> None:
    line = one_error_line(invoke("sweep", *SMALL_SWEEP, "--out", tmp_path / "results", "--mlflow", "::bad"))
    assert "--mlflow URI '::bad' is malformed" in line and not (tmp_path / "results").exists()


def test_without_mlflow_installed_the_flag_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # importlib finds no mlflow
    line = one_error_line(invoke("assess", ZOO_PARENT, "--json", tmp_path / "r.json", "--mlflow", tmp_path / "mlruns"))
    assert "pip install 'evaluator[mlflow]'" in line and list(tmp_path.iterdir()) == []


@pytest.fixture
def server() -> Iterator[str]:
    """A local HTTP server answering 200 on /health and 404 elsewhere: a tracking server's address."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_targets_of_folders_and_servers(tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert tracking_target("file:./mlruns").uri == (tmp_path / "mlruns").as_uri()
    assert tracking_target("mlruns", "mine").uri == (tmp_path / "mlruns").as_uri()
    assert tracking_target(f"{server}/").uri == server  # the server answered its health check
    assert tracking_target(server + "/prefix").uri == server + "/prefix"  # any answer (404) means it is there
    with pytest.raises(EvaluatorError, match="^mlflow URI 'gopher://x' has an unknown scheme") as error:
        tracking_target("gopher://x")
    assert error.value.field == "mlflow"
    assert list(tmp_path.iterdir()) == []


def test_runs_nest_under_a_parent_and_a_deleted_experiment_is_refused(tmp_path: Path) -> None:
    target = tracking_target(str(tmp_path / "store"), "nested")
    ids = log_runs(target, [RunRecord("child", {"method": "none"}, {"clean_accuracy": 0.5}, {"sha256": "0" * 64})],
                   RunRecord("sweep", {"seed": "0"}))
    runs = runs_of(tmp_path / "store", "nested")
    child = runs[runs["run_id"] == ids[1]].iloc[0]
    assert child["tags.mlflow.parentRunId"] == ids[0] and child["metrics.clean_accuracy"] == 0.5
    client = mlflow.MlflowClient()
    client.delete_experiment(client.get_experiment_by_name("nested").experiment_id)
    with pytest.raises(EvaluatorError, match="^mlflow_experiment 'nested' is deleted"):
        log_runs(target, [RunRecord("again")])


def test_importing_the_results_renderers_and_cli_never_loads_mlflow() -> None:
    probe = ("import json, sys, evaluator.tracking, evaluator.results, evaluator.report.writers, evaluator.app.cli; "
             "print(json.dumps(sorted(n for n in sys.modules if n == 'mlflow' or n.startswith('mlflow.'))))")
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(completed.stdout) == []
