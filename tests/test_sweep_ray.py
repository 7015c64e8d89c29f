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
from evaluator.app.sweep_engine import RayEngine, SerialEngine, check_reachable, sweep_engine
from evaluator.errors import EvaluatorError
from evaluator.progress import SilentProgress

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
    (["--workers", "2", "--methods", "filter-l1,filter-l1"], "methods must name each method once"),
])
def test_bad_engine_settings_are_one_line_exit_2_and_nothing_written(flags: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["sweep", *SMALL, *flags, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists() or not any(path.is_file() and path.name != ".sweep.lock" for path in out.rglob("*"))


def test_on_a_cluster_paths_must_be_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", *SMALL, "--ray-address", "127.0.0.1:1", "--out", "results"])
    assert result.exit_code == 2 and "--out must be an absolute path with ray_address" in result.output, result.output
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def engine() -> RayEngine:
    """A local Ray runtime for 2 tasks of 3 threads each: more threads than workers, which must not starve it."""
    made = RayEngine(2, None, 3, "cpu")
    yield made
    made.close()


def test_tasks_of_more_threads_than_workers_run_and_keep_their_order(engine: RayEngine) -> None:
    def double(item: int, progress: object, say: object) -> int:
        say(f"doubled {item}")  # type: ignore[operator]
        return item * 2

    said: list[str] = []
    assert engine.map(double, [3, 1, 2], SilentProgress(), said.append, "doubling") == [6, 2, 4]
    assert said == ["doubled 3", "doubled 1", "doubled 2"] and len(engine.seconds["doubling"]) == 3
    assert engine.description == "ray: 6 CPUs on a local Ray runtime"


def test_a_task_that_fails_is_one_evaluator_error(engine: RayEngine) -> None:
    def refuse(item: int, progress: object, say: object) -> int:
        if item == 2:
            raise EvaluatorError("samples must be at least 1, got 0", field="samples")
        raise ValueError("a bug")

    with pytest.raises(EvaluatorError, match="samples must be at least 1") as error:
        engine.map(refuse, [2], SilentProgress(), lambda message: None, "refusing")
    assert error.value.field == "samples"
    with pytest.raises(EvaluatorError, match=r"a Ray task of the sweep \(refusing\) failed: .*a bug"):
        engine.map(refuse, [1], SilentProgress(), lambda message: None, "refusing")
