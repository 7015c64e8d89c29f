"""A sweep killed (SIGKILL) at seeded points and restarted ends with the results of an uninterrupted one; a second sweep
on the same results folder refuses while the first runs; a bad configuration is refused before anything is written."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.datasets import Dataset
from evaluator.errors import EvaluatorError
from evaluator.app.sweep_config import SweepConfig, make_config
from evaluator.app.sweep_run import LOCK_FILE, run_sweep

from conftest import ROOT, ZOO_PARENT

SWEEP = ["--source", "lenet5", "--train-epochs", "1", "--methods", "filter-l1", "--rates", "1,2,4", "--finetune-epochs", "1",
         "--samples", "50", "--attacks", "square-linf:queries=50", "--no-latency"]
KILLS = 5
KILL_SEED = 0
POLL_SECONDS = 0.01
SAFETY_TIMEOUT = 900  # seconds: only against a hung subprocess, never a measure of speed
TIMING_KEYS = ("latency", "throughput", "latency_by_batch", "latency_p50_ms", "latency_p99_ms", "throughput_per_s",
               "throughput_batch", "latency_retimed", "float_parent_throughput_per_s", "speedup", "speedup_vs_float",
               "placement", "step_seconds")  # placement: what ONNX Runtime ran, observed at run time like the latency;
# step_seconds: the wall time of each step of the run (table.json timing)


@pytest.fixture(scope="module")
def tiny_npz(fmnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real Fashion-MNIST: 6000 training images (the sweep holds 5000 out for validation) and 300 test images."""
    assert fmnist.train is not None
    path = tmp_path_factory.mktemp("data") / "fmnist_tiny.npz"
    to_uint8 = lambda x: np.round(x[:, 0] * 255).astype(np.uint8)  # noqa: E731
    np.savez(path, x_train=to_uint8(fmnist.train.x[:6000]), y_train=fmnist.train.y[:6000],
             x_test=to_uint8(fmnist.test.x[:300]), y_test=fmnist.test.y[:300], classes=np.array(fmnist.classes))
    return path


def command(out: Path, dataset: Path) -> list[str]:
    return [sys.executable, "-m", "evaluator", "sweep", *SWEEP, "--dataset", str(dataset), "--out", str(out)]


def result_files(out: Path) -> set[str]:
    """The results (relative paths) present now; hidden files (lock, temporaries) and parent copies left out."""
    found = set()
    for folder in ("", "models", "assessments", "figures"):
        try:
            entries = list(os.scandir(out / folder))
        except OSError:
            continue
        found |= {f"{folder}/{entry.name}".lstrip("/") for entry in entries
                  if entry.is_file() and not entry.name.startswith(".") and not entry.name.endswith(".part")}
    return found


def start(out: Path, dataset: Path, log: Path | None = None) -> subprocess.Popen[bytes]:
    """The sweep in a subprocess; its stderr into `log` (a file: a full pipe would stall it)."""
    with open(log or os.devnull, "wb") as stderr:
        return subprocess.Popen(command(out, dataset), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


def run(out: Path, dataset: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(out, dataset), cwd=ROOT, capture_output=True, text=True, timeout=SAFETY_TIMEOUT)


@pytest.fixture(scope="module")
def uninterrupted(tiny_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float]]]:
    """The sweep run once without interruption, and each results file with when it first appeared (seconds from start)."""
    out = tmp_path_factory.mktemp("uninterrupted") / "results"
    log = out.with_name("stderr.txt")
    began = time.monotonic()
    process = start(out, tiny_npz, log)
    events: list[tuple[str, float]] = []
    seen: set[str] = set()
    while True:
        finished = process.poll() is not None
        new = result_files(out) - seen
        events += [(name, time.monotonic() - began) for name in sorted(new)]
        seen |= new
        if finished:
            break
        time.sleep(POLL_SECONDS)
    assert process.wait() == 0, log.read_text()
    return out, events


def without_timing(value: Any, folders: tuple[Path, ...]) -> Any:
    """A results file's data with wall-clock figures, the environment and the results folders' own paths taken out."""
    if isinstance(value, dict):
        return {key: without_timing(item, folders) for key, item in value.items()
                if key not in TIMING_KEYS and key != "environment"}
    if isinstance(value, list):
        return [without_timing(item, folders) for item in value]
    if isinstance(value, str):
        for folder in folders:
            value = value.replace(str(folder), "OUT")
    return value


def results(out: Path, copied_from: Path | None = None) -> dict[str, Any]:
    """Everything a sweep leaves that must not depend on interruptions: tables, assessments' numbers, the models'
    bytes, the figures, and which files exist. Paths inside OUT read OUT (also those of a folder it was copied from:
    a cached assessment keeps the path it was made at)."""
    folders = (out,) if copied_from is None else (out, copied_from)
    table = without_timing(json.loads((out / "table.json").read_text()), folders)
    table["config"].pop("out")
    return {
        "files": sorted(result_files(out)),
        "table.json": table,
        "table.csv": without_timing((out / "table.csv").read_text(), folders),
        "table.md": without_timing((out / "table.md").read_text(), folders),
        "assessments": {path.name: without_timing(json.loads(path.read_text()), folders)
                        for path in sorted((out / "assessments").glob("*.json"))},
        "models": {path.name: path.read_bytes() for path in sorted((out / "models").iterdir())},
        "figures": {path.name: path.read_bytes() for path in sorted((out / "figures").glob("*.svg"))},
    }


def leftovers(out: Path) -> list[str]:
    return sorted(str(path.relative_to(out)) for path in out.rglob("*")
                  if path.name.endswith((".tmp", ".part")))


@pytest.mark.train
def test_killed_five_times_ends_with_the_uninterrupted_results(uninterrupted: tuple[Path, list[tuple[str, float]]],
                                                               tiny_npz: Path, tmp_path: Path) -> None:
    """Kill points drawn with a fixed seed: the k-th results file of the uninterrupted run to appear (training, pruning,
    fine-tuning, export and assessment all write some), then a delay drawn below the time that run took to its next
    file, so kills land inside a step as well as between the files of one."""
    reference, events = uninterrupted
    names = [name for name, _ in events]
    outputs = [index for index, name in enumerate(names) if name.startswith(("table.", "figures/", "report."))]
    assert outputs and outputs[0] > KILLS, names
    draw = random.Random(KILL_SEED)
    picks = sorted(draw.sample(range(outputs[0]), KILLS))  # up to the last assessment: the outputs come in a blink
    out = tmp_path / "results"
    landed = []
    for run_index, index in enumerate(picks):
        name, appeared = events[index]
        delay = draw.uniform(0.0, 0.8 * (events[index + 1][1] - appeared))
        log = tmp_path / f"stderr{run_index}.txt"
        process = start(out, tiny_npz, log)
        deadline = time.monotonic() + SAFETY_TIMEOUT
        while process.poll() is None and not (out / name).exists() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            landed.append(f"{name} + {delay:.2f} s")
        assert process.wait(timeout=SAFETY_TIMEOUT) in (0, -signal.SIGKILL), log.read_text()
    assert len(landed) == KILLS, f"only {landed} were killed: the sweep ended first"
    finished = run(out, tiny_npz)
    assert finished.returncode == 0, finished.stderr
    assert leftovers(out) == []
    assert results(out) == results(reference), landed


@pytest.mark.train
def test_second_sweep_on_the_same_out_refuses_while_the_first_runs(uninterrupted: tuple[Path, list[tuple[str, float]]],
                                                                   tiny_npz: Path, tmp_path: Path) -> None:
    """The second sweep exits 2 with one line naming the first one's pid; the first, paused meanwhile so that it
    certainly holds the lock, then finishes with the uninterrupted results."""
    reference, _ = uninterrupted
    out = tmp_path / "results"
    first = start(out, tiny_npz)
    lock = out / LOCK_FILE
    deadline = time.monotonic() + SAFETY_TIMEOUT
    while first.poll() is None and time.monotonic() < deadline and not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
        time.sleep(POLL_SECONDS)
    assert first.poll() is None, "the first sweep ended before it could be paused"
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = run(out, tiny_npz)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{out} is in use by another sweep (pid {first.pid})" in lines[0], second.stderr
    assert first.wait(timeout=SAFETY_TIMEOUT) == 0
    assert results(out) == results(reference)


def test_lock_refuses_in_process_and_is_released(tmp_path: Path) -> None:
    from evaluator.app.sweep_run import sweep_lock

    out = tmp_path / "results"
    out.mkdir()
    with sweep_lock(out):
        with pytest.raises(EvaluatorError, match=rf"is in use by another sweep \(pid {os.getpid()}\)"):
            with sweep_lock(out):
                pass
    with sweep_lock(out):  # released on leaving the block
        pass


@pytest.mark.train
def test_resume_redoes_steps_whose_files_are_corrupt_partial_or_stale(uninterrupted: tuple[Path, list[tuple[str, float]]],
                                                                      tiny_npz: Path, tmp_path: Path) -> None:
    """What a kill or a damaged disk can leave: a card that is cut short, not JSON, or lacks keys, a card without its
    .onnx, a stale temporary file and parent copy, a corrupt cached assessment. Each step is done again, nothing
    fails, and the results are the uninterrupted ones."""
    reference, _ = uninterrupted
    out = tmp_path / "results"
    shutil.copytree(reference, out)
    models = out / "models"
    parent_card = next(path for path in models.glob("*.json") if "_cr" not in path.name)
    cr2, cr4 = sorted(models.glob("*_cr2.json"))[0], sorted(models.glob("*_cr4.json"))[0]
    parent_card.write_text(parent_card.read_text()[:100])  # cut short
    cr2.write_text(json.dumps({"metadata": {"pruning": None}}))  # keys missing
    cr4.with_suffix(".onnx").unlink()  # killed between the .pt2 and the .onnx
    assessments = sorted((out / "assessments").glob("*.json"))
    assessments[0].write_bytes(b"\xff\xfe not json")
    assessments[1].write_text("[1, 2]")
    (models / f".{cr4.stem}.pt2.abcd1234.tmp").write_bytes(b"partial")
    (models / f"{parent_card.stem}.pt2.part").write_bytes(b"partial")
    (out / ".table.json.x1y2z3w4.tmp").write_text("{")
    resumed = run(out, tiny_npz)
    assert resumed.returncode == 0, resumed.stderr
    log = resumed.stdout + resumed.stderr
    assert "training the parent" in log and log.count("assessing") == 2 and log.count(": cached") == 1, log
    assert leftovers(out) == []
    assert results(out, copied_from=reference) == results(reference)


def test_finished_step_reads_a_bad_card_as_not_done(tmp_path: Path) -> None:
    from exporters.pruning.schedule import finished_step

    stem = tmp_path / "model_cr2"
    for suffix in (".pt2", ".onnx"):
        stem.with_suffix(suffix).write_bytes(b"x")
    for card in ("", "{", "[]", "null", '{"metadata": 1}', '{"metadata": {"pruning": {"step_key": "k"}}}',
                 '{"metadata": {"pruning": {"step_key": "k", "achieved_rate": 2, "target": {"rate": 0}}}}',
                 '{"metadata": {"pruning": {"step_key": "k", "achieved_rate": 2, "target": {"rate": 2}}}, "files": []}'):
        stem.with_suffix(".json").write_text(card)
        assert finished_step(stem, "k", 0.05) is None, card
    stem.with_suffix(".json").write_bytes(b"\x80\x81")
    assert finished_step(stem, "k", 0.05) is None


def bad_config_cases(tmp_path: Path, tiny_npz: Path) -> dict[str, tuple[list[str], str]]:
    """Command-line arguments (on top of a valid sweep) and a part of the one-line error each must give."""
    lone_pt2 = tmp_path / "lone" / ZOO_PARENT.with_suffix(".pt2").name
    lone_pt2.parent.mkdir()
    shutil.copyfile(ZOO_PARENT.with_suffix(".pt2"), lone_pt2)
    test_only = tmp_path / "test_only.npz"
    with np.load(tiny_npz) as arrays:
        np.savez(test_only, x=arrays["x_test"], y=arrays["y_test"])
        np.savez(tmp_path / "small.npz", x_train=arrays["x_train"][:2000], y_train=arrays["y_train"][:2000],
                 x_test=arrays["x_test"], y_test=arrays["y_test"])
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    a_file.with_suffix(".npz").write_text("not a zip")
    files: dict[str, str | bytes] = {"folder.toml": "", "string.toml": 'sweep = "lenet5"\n', "list.toml": "sweep = [1, 2]\n",
                                     "number.toml": "sweep = 3\n", "latin1.toml": "[sweep]\nsource = 'caf\xe9'\n".encode("latin-1"),
                                     "outside.toml": 'samples = 5\n[sweep]\nsource = "lenet5"\n',
                                     "nan_width.toml": "[sweep]\nwidth = nan\n", "zero_patience.toml": "[sweep]\npatience = 0\n",
                                     "bad_lr.toml": "[sweep]\nlearning_rate = -1e-3\n", "bad_path.toml": "[sweep]\ndata_dir = 5\n",
                                     "retime.toml": "[sweep]\nretime_rounds = 1_000_000_000\n"}
    for name, content in files.items():
        if name == "folder.toml":
            (tmp_path / name).mkdir()
        elif isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content)
    os.mkfifo(tmp_path / "fifo.toml")
    with open(tmp_path / "huge.toml", "wb") as handle:
        handle.write(b"# a comment, then zeros\n")
        handle.truncate(2 << 30)  # sparse: takes no disk
    config = lambda name: ["--config", str(tmp_path / name)]  # noqa: E731
    return {
        "unknown provider": (["--provider", "tpu"], "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
        "unknown dataset": (["--dataset", "cifar-99"], "unknown dataset 'cifar-99'"),
        "missing dataset file": (["--dataset", str(tmp_path / "missing.npz")], "dataset file not found"),
        "dataset without training split": (["--dataset", str(test_only)], "has no training split"),
        "training split too small": (["--dataset", str(tmp_path / "small.npz")], "hold out 5000 for validation"),
        "corrupt dataset file": (["--dataset", str(a_file.with_suffix(".npz"))], "is not a readable .npz file"),
        "image size for a pt2": (["--source", str(lone_pt2), "--image-size", "64"], "image_size is for a parent trained here"),
        "image size the model cannot take": (["--image-size", "64"], "lenet5 supports 1 or 3 channels and 28 or 32 px inputs"),
        "image size 0": (["--source", "resnet18", "--image-size", "0"], "resnet18 supports 1 or 3 channels and 28 to 224 px"),
        "missing pt2": (["--source", str(tmp_path / "gone.pt2")], "source file not found"),
        "width 0": (["--width", "0"], "width must be a finite number > 0"),
        "negative width": (["--width", "-1"], "width must be a finite number > 0"),
        "width nan": (config("nan_width.toml"), "width = nan is not a valid float"),
        "patience 0": (config("zero_patience.toml"), "patience must be a whole number >= 1"),
        "negative learning rate": (config("bad_lr.toml"), "learning_rate must be a finite number > 0"),
        "samples 0": (["--samples", "0"], "samples must be a whole number >= 1"),
        "train epochs 0": (["--train-epochs", "0"], "train_epochs must be a whole number >= 1"),
        "negative finetune epochs": (["--finetune-epochs", "-1"], "finetune_epochs must be a whole number >= 0"),
        "infinite rate": (["--rates", "1,inf"], "rates = '1,inf' is not a valid list"),
        "negative seed": (["--seed", "-1"], "seed must be a whole number from 0"),
        "out is a file": (["--out", str(a_file)], "is a file, not a folder"),
        "out under a file": (["--out", str(a_file / "results")], "is a file, not a folder"),
        "data_dir not a path": (config("bad_path.toml"), "data_dir = 5 is not a valid path"),
        "config is a folder": (config("folder.toml"), "is a folder: expected a TOML file"),
        "sweep is a string": (config("string.toml"), "sweep must be a table of settings ([sweep]), got a string"),
        "sweep is a list": (config("list.toml"), "got a list"),
        "sweep is a number": (config("number.toml"), "got a number"),
        "config not UTF-8": (config("latin1.toml"), "is not UTF-8 text"),
        "setting outside [sweep]": (config("outside.toml"), "setting 'samples' is outside the [sweep] table"),
        "config missing": (config("missing.toml"), "sweep file not found"),
        "config is a device": (["--config", "/dev/zero"], "is not a regular file"),
        "config is a FIFO": (config("fifo.toml"), "is not a regular file"),
        "config of gigabytes": (config("huge.toml"), "a TOML file of at most 1,048,576 bytes is expected"),
        "retime rounds": (config("retime.toml"), "retime_rounds must be 0"),
        "data_dir a file": (["--data-dir", str(a_file)], "is not a folder"),
        "train epochs huge": (["--train-epochs", "1000000000000"], "train_epochs must be at most 10,000"),
        "pgd steps huge": (["--attacks", "pgd-linf:steps=1000000000000"], "steps must be at most 1,000,000"),
    }


CASE_NAMES = ["unknown provider", "unknown dataset", "missing dataset file", "dataset without training split",
              "training split too small", "corrupt dataset file", "image size for a pt2", "image size the model cannot take",
              "image size 0", "missing pt2",
              "width 0", "negative width", "width nan", "patience 0", "negative learning rate", "samples 0",
              "train epochs 0", "negative finetune epochs", "infinite rate", "negative seed", "out is a file",
              "out under a file", "data_dir not a path", "config is a folder", "sweep is a string", "sweep is a list",
              "sweep is a number", "config not UTF-8", "setting outside [sweep]", "config missing", "config is a device",
              "config is a FIFO", "config of gigabytes", "retime rounds", "data_dir a file", "train epochs huge",
              "pgd steps huge"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_configuration_is_one_line_and_writes_nothing(case: str, tiny_npz: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cases = bad_config_cases(tmp_path, tiny_npz)
    assert sorted(cases) == sorted(CASE_NAMES)
    arguments, message = cases[case]
    out = tmp_path / "results"
    monkeypatch.chdir(tmp_path)  # a sweep file's own `out` (none here) would land in this test's folder
    monkeypatch.setattr("evaluator.app.sweep_run.sweep_locked", lambda *args: pytest.fail("the configuration was accepted"))
    base = ["sweep", "--out", str(out), "--dataset", str(tiny_npz), *SWEEP]
    result = CliRunner().invoke(app, [*base, *arguments])  # later flags win
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output, result.output
    assert message in result.output, result.output
    assert not out.exists()
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_unreadable_config_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text("[sweep]\n")
    real_open = open

    def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)  # chmod 000 does not stop root
    from evaluator.app.sweep_config import load_sweep_file

    with pytest.raises(EvaluatorError, match="cannot read sweep file .*: Permission denied"):
        load_sweep_file(path, {})


@pytest.mark.parametrize("key", ["out", "data_dir"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_path_is_not_the_current_folder(key: str, value: str) -> None:
    from evaluator.app.sweep_config import make_config

    with pytest.raises(EvaluatorError, match=f"{key} = '{value}' is not a valid path"):
        make_config({key: value}, "sweep.toml")


@pytest.mark.parametrize("change, message", [
    ({"width": float("nan")}, "width must be"), ({"width": float("inf")}, "width must be"),
    ({"learning_rate": float("nan")}, "learning_rate must be"), ({"learning_rate": 0.0}, "learning_rate must be"),
    ({"rates": (1.0, float("inf"))}, "rates must be finite"), ({"rates": (1.0, float("nan"))}, "rates must be finite"),
    ({"rate_tolerance": float("nan")}, "rate_tolerance must be"), ({"seed": 2**63}, "seed must be"),
    ({"epsilons": (float("nan"),)}, "Linf epsilon"), ({"epsilons_l2": (float("inf"),)}, "L2 epsilon"),
    ({"provider": "tpu"}, "unknown provider"), ({"patience": 0}, "patience must be"),
])
def test_config_objects_made_in_python_are_checked_too(change: dict[str, Any], message: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """run_sweep checks a SweepConfig however it was made, before it writes anything."""
    monkeypatch.setattr("evaluator.app.sweep_run.sweep_locked", lambda *args: pytest.fail("the configuration was accepted"))
    config = replace(SweepConfig(out=tmp_path / "results"), **change)
    with pytest.raises(EvaluatorError, match=message):
        run_sweep(config)
    assert not (tmp_path / "results").exists()


def test_valid_settings_pass(tiny_npz: Path, tmp_path: Path) -> None:
    make_config({"dataset": str(tiny_npz), "out": str(tmp_path / "new" / "results"), "seed": 2**63 - 1, "width": 0.25,
                 "finetune_epochs": 0, "provider": "cpu"}).validate()
    make_config({"source": str(ZOO_PARENT.with_suffix(".pt2")), "rates": "1", "methods": "filter-l1"}).validate()
    assert not (tmp_path / "new").exists()


def test_links_planted_in_the_results_folder_do_not_carry_writes_outside(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale `.part` that links to a file elsewhere is removed as a link (its target untouched); a results
    sub-folder that links outside OUT is refused before any work."""
    from evaluator.app.sweep_run import remove_stale_temporaries

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "results"
    (out / "models").mkdir(parents=True)
    (out / "models" / "lenet5_fmnist.pt2.part").symlink_to(victim)
    remove_stale_temporaries(out)
    assert victim.read_text() == "keep me" and not (out / "models" / "lenet5_fmnist.pt2.part").is_symlink()

    monkeypatch.setattr("evaluator.app.sweep_run.sweep_locked", lambda *args: pytest.fail("the results folder was accepted"))
    (tmp_path / "elsewhere").mkdir()
    (out / "assessments").symlink_to(tmp_path / "elsewhere")
    config = make_config({"source": str(ZOO_PARENT.with_suffix(".pt2")), "rates": "1", "methods": "filter-l1",
                          "out": str(out)})
    with pytest.raises(EvaluatorError, match="leads outside"):
        run_sweep(config)
    assert not any((tmp_path / "elsewhere").iterdir())
