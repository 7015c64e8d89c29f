"""The sweep on Ray (--workers, --ray-address): a real local Ray runtime of 2 CPUs runs the small sweep to the same
results as the serial run, and a driver killed part-way resumes to them too; bad addresses are one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.app.sweep_engine import SerialEngine, check_reachable, sweep_engine
from evaluator.errors import EvaluatorError

from conftest import ROOT, SMALL
from interrupt import kill_after
from test_sweep import comparable

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
ON_RAY = [*SMALL, "--workers", "2"]


def without_engine(results: dict[str, object]) -> dict[str, object]:
    """comparable() (which leaves the timing record out) less the engine's settings."""
    table = results["table.json"]
    assert isinstance(table, dict)
    for key in ("workers", "ray_address"):
        table["config"].pop(key)
    return results


@pytest.fixture(scope="module")
def on_ray(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "results"
    result = subprocess.run([sys.executable, "-m", "evaluator", "sweep", *ON_RAY, "--out", str(out)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "steps run on ray: 2 CPUs on a local Ray runtime" in result.stderr
    return out


@pytest.mark.train
def test_two_workers_give_the_serial_results(on_ray: Path, small_sweep: Path) -> None:
    assert without_engine(comparable(on_ray)) == without_engine(comparable(small_sweep))
    timing = json.loads((on_ray / "table.json").read_text())["timing"]
    assert timing["steps"] == "ray: 2 CPUs on a local Ray runtime" and timing["latency"] == "not measured"
    assert json.loads((small_sweep / "table.json").read_text())["timing"]["steps"] == "serial"


@pytest.mark.train
def test_a_driver_killed_part_way_resumes_to_the_same_results(small_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    command = [sys.executable, "-m", "evaluator", "sweep", *ON_RAY, "--out", str(out)]
    kill_after(command, out / "models", "*_cr2.onnx", ROOT, group=True)
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert "cached" in resumed.stderr
    assert without_engine(comparable(out)) == without_engine(comparable(small_sweep))


def test_one_worker_and_no_cluster_is_the_serial_engine() -> None:
    assert isinstance(sweep_engine(1, None, None, "cpu"), SerialEngine)


@pytest.mark.parametrize("address, message", [
    ("nonsense", "ray_address must be HOST:PORT, ray://HOST:PORT or auto, got 'nonsense'"),
    ("host:99999", "ray_address must be HOST:PORT"),
    ("127.0.0.1:1", "ray_address 127.0.0.1:1 is not reachable"),
])
def test_bad_cluster_addresses_are_refused_before_ray_tries(address: str, message: str) -> None:
    with pytest.raises(EvaluatorError, match=message) as error:
        check_reachable(address)
    assert error.value.field == "ray_address"


@pytest.mark.parametrize("flags, message", [
    (["--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1 is not reachable"),
    (["--ray-address", "::"], "--ray-address must be HOST:PORT"),
    (["--workers", "0"], "--workers must be a whole number from 1 to 4096, got 0"),
])
def test_bad_engine_settings_are_one_line_exit_2_and_nothing_written(flags: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["sweep", *SMALL, *flags, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists() or not any(path.is_file() and path.name != ".sweep.lock" for path in out.rglob("*"))
