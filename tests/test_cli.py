"""The command line through typer's CliRunner: the main job, training and pruning, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.runtime import nchwc_block

from conftest import ZOO_CHILD, ZOO_PARENT
from onnx_graphs import custom_op_model, linear_classifier

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.mark.slow
def test_assess_zoo_models_writes_the_documented_json(tmp_path: Path) -> None:
    report = tmp_path / "assessment.json"
    result = invoke("assess", ZOO_PARENT, ZOO_CHILD, "--samples", "100", "--json", report)
    assert result.exit_code == 0, result.output
    assert "size / speed / robustness" in result.output and "lenet5_fmnist_filter-l1_cr4.onnx" in result.output
    data = json.loads(report.read_text())
    assert data["schema_version"] == "1.5" and data["environment"]["packages"]["onnxruntime"]
    parent, child = data["models"]
    for model in (parent, child):
        for key in ("path", "sha256", "size_bytes", "params", "macs", "provider", "clean_accuracy", "clean_accuracy_ci"):
            assert model[key] is not None, key
        assert set(model["latency"]) >= {"batch_size", "p50_ms", "p99_ms", "throughput_per_s"}
        assert model["latency"]["batch_size"] == 1 and model["throughput"]["batch_size"] == 256
        assert model["external_data"] == [] and model["gradients"] == "source"
        assert {"split", "seed", "count", "indices", "labels", "clean_correct", "clean_accuracy", "clean_accuracy_ci",
                "outcome_codes"} <= set(model["samples"]) and len(model["samples"]["indices"]) == 100
        names = {attack["name"]: attack for attack in model["attacks"]}
        assert set(names) == {"apgd-ce-linf", "apgd-t-linf", "square-linf"}  # the default Linf cascade
        for attack in model["attacks"]:
            assert {"name", "norm", "kind", "epsilon", "robust_accuracy", "robust_accuracy_ci", "clean_accuracy",
                    "clean_accuracy_ci", "samples", "outcomes"} <= set(attack)
            assert attack["samples"] == 100 and attack["robust_accuracy"] <= model["clean_accuracy"] + 0.1
            low, high = attack["robust_accuracy_ci"]
            assert low <= attack["robust_accuracy"] <= high and attack["outcomes"].count("R") == round(attack["robust_accuracy"] * 100)
        assert all(set(entry) >= {"robust_accuracy_ci", "outcomes"} for entry in model["robustness"])
        assert names["square-linf"]["queries"] > 0 and names["apgd-t-linf"]["kind"] == "white-box"
    assert parent["samples"]["indices"] == child["samples"]["indices"]  # the same images for every model
    assert parent["params"] / child["params"] >= 3.5
    assert child["pruning"]["method"] == "filter-l1" and parent["pruning"] is None
    # LeNet-5's 6 filters, and the child's 3, are off any NCHWc block: the note names this CPU's block
    block = nchwc_block()
    alignment = [note for note in parent["notes"] if "NCHWc" in note]
    assert alignment == ([f"2 of 2 conv layers have channel counts off a multiple of {block}, the block of ONNX Runtime's "
                          "fast convolutions (NCHWc) on this CPU: it pads their filters or skips them"] if block > 1 else [])


def test_attacks_are_listed() -> None:
    result = invoke("attacks")
    assert result.exit_code == 0 and "pgd-linf" in result.output and "square-linf" in result.output


@pytest.mark.train
def test_train_prune_assess_on_a_small_npz(small_npz: Path, tmp_path: Path) -> None:
    trained = invoke("train", "lenet5", "--dataset", small_npz, "--out", tmp_path, "--name", "small", "--epochs", "1",
                     "--validation-size", "500", "--width", "0.5")
    assert trained.exit_code == 0, trained.output
    pruned = invoke("prune", tmp_path / "small.pt2", "--rate", "2", "--finetune-epochs", "1")
    assert pruned.exit_code == 0, pruned.output
    child = tmp_path / "small_filter-l1_cr2.onnx"
    card = json.loads(child.with_suffix(".json").read_text())
    assert abs(card["metadata"]["pruning"]["achieved_rate"] / 2 - 1) <= 0.05
    assert card["metadata"]["parent"]["source_sha256"] == card["metadata"]["parent"]["source_sha256"]
    assert card["export_check"]["max_abs_logit_diff"] <= 1e-4 and card["export_check"]["top1_agreement"] == 1.0
    assessed = invoke("assess", child, "--samples", "50", "--no-latency", "--json", tmp_path / "a.json")
    assert assessed.exit_code == 0, assessed.output
    model = json.loads((tmp_path / "a.json").read_text())["models"][0]
    assert model["dataset"] == str(small_npz) and model["clean_samples"] == 500 and model["latency"] is None


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_missing_model_file(tmp_path: Path) -> None:
    line = one_error_line(invoke("assess", tmp_path / "nope.onnx", "--json", tmp_path / "out.json"))
    assert "not found" in line and not (tmp_path / "out.json").exists()


def test_text_file_named_onnx(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_text("this is not a model\n")
    line = one_error_line(invoke("assess", fake, "--json", tmp_path / "out.json"))
    assert "not a valid ONNX model" in line and not (tmp_path / "out.json").exists()


def test_input_shape_that_does_not_fit_the_dataset(tmp_path: Path) -> None:
    model = linear_classifier(tmp_path / "rgb.onnx", channels=3, size=32)
    line = one_error_line(invoke("assess", model, "--dataset", "fashion-mnist", "--json", tmp_path / "out.json"))
    assert "(3, 32, 32)" in line and "(1, 28, 28)" in line and not (tmp_path / "out.json").exists()


def test_labels_out_of_range(tmp_path: Path) -> None:
    data = tmp_path / "labels.npz"
    np.savez(data, x=np.zeros((4, 28, 28), np.uint8), y=np.array([0, 1, 2, 12]))
    line = one_error_line(invoke("assess", ZOO_PARENT, "--dataset", data, "--json", tmp_path / "out.json"))
    assert "label 12" in line and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--eps", "-0.1"), "epsilon"),
        (("--eps", "eight"), "cannot read epsilon"),
        (("--attacks", "deepfool"), "unknown attack"),
        (("--samples", "0"), "--samples"),
        (("--eps-l2", "-1"), "L2 epsilon must be a positive number"),
        (("--eps", "2"), "Linf epsilon must be in (0, 1]"),
        (("--attacks", "pgd-l2", "--eps-l2", "0"), "L2 epsilon must be a positive number"),
        (("--attacks", "pgd-linf", "--eps-l2", "1"), "no selected attack works in L2"),
        (("--attacks", "square-linf:queries=-5"), "not a valid int"),
        (("--attacks", "square-linf:budget=5"), "KEY one of"),
        (("--attacks", "pgd-linf:steps"), "not KEY=VALUE"),
        (("--attacks", "pgd-linf:random_start=maybe"), "not a valid bool"),
    ],
)
def test_bad_options(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    line = one_error_line(invoke("assess", ZOO_PARENT, *args, "--json", tmp_path / "out.json"))
    assert message in line and not (tmp_path / "out.json").exists()


def test_a_model_without_metadata_needs_a_dataset_and_gets_gradients_from_its_graph(tmp_path: Path) -> None:
    """No metadata: the dataset must be named (never a silent default); the white-box attacks then run on the graph
    converted to torch, checked against ONNX Runtime, and the report says so."""
    plain = tmp_path / "plain.onnx"
    model = onnx.load(str(ZOO_PARENT))
    del model.metadata_props[:]
    onnx.save(model, str(plain))
    line = one_error_line(invoke("assess", plain, "--samples", "30", "--json", tmp_path / "out.json"))
    assert line.startswith("error: --dataset is needed") and not (tmp_path / "out.json").exists()
    result = invoke("assess", plain, "--dataset", "fashion-mnist", "--samples", "30", "--no-latency",
                    "--attacks", "apgd-ce-linf:steps=10,square-linf:queries=50", "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out.json").read_text())["models"][0]
    assert [a["name"] for a in data["attacks"]] == ["apgd-ce-linf", "square-linf"] and data["gradients"] == "converted graph"
    assert any("gradients of the deployed graph converted to torch" in note for note in data["notes"])
    assert {check["name"]: check["passed"] for check in data["checks"]}["source-agrees"]


def test_prune_of_a_missing_source(tmp_path: Path) -> None:
    line = one_error_line(invoke("prune", tmp_path / "absent.pt2"))
    assert "not found" in line


def test_score_based_assessment_never_imports_torch(tmp_path: Path) -> None:
    """A slim install (no torch) must still assess latency, accuracy and score-based robustness."""
    import subprocess
    import sys

    script = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from evaluator.app.cli import app\n"
        f"result = CliRunner().invoke(app, ['assess', {str(ZOO_PARENT)!r}, '--attacks', 'square-linf', '--samples', '20',"
        f" '--json', {str(tmp_path / 'a.json')!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'torch_pruning'))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    completed = subprocess.run([sys.executable, "-m", "evaluator", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "assess" in completed.stdout and "prune" in completed.stdout


def test_assess_help_shows_the_defaults_it_runs() -> None:
    """Defaults written into the help text survive rich's markup (an unescaped [default: ...] vanished)."""
    from evaluator.default_attacks import DEFAULT_CASCADES

    result = invoke("assess", "--help")
    text = " ".join(result.output.replace("\u2502", " ").split())  # without the panel's borders and line breaks
    assert result.exit_code == 0 and "[default: 8/255]" in text
    for norm, cascade in DEFAULT_CASCADES.items():
        assert ", ".join(cascade) in text, norm


def test_a_graph_with_a_fixed_batch_of_one_is_padded_not_refused(tmp_path: Path) -> None:
    model = linear_classifier(tmp_path / "fixed.onnx", batch=1)
    result = invoke("assess", model, "--dataset", "fashion-mnist", "--samples", "20", "--attacks", "square-linf", "--json",
                    tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out.json").read_text())["models"][0]
    assert data["latency"]["batch_size"] == 1 and data["throughput"]["batch_size"] == 1
    assert any("fixed at 1" in note for note in data["notes"])


def test_an_operator_onnx_runtime_does_not_know(tmp_path: Path) -> None:
    line = one_error_line(invoke("assess", custom_op_model(tmp_path / "custom.onnx")))
    assert "custom.onnx" in line


def test_paths_are_printed_literally(tmp_path: Path) -> None:
    line = one_error_line(invoke("assess", tmp_path / "m[bold].onnx"))
    assert "m[bold].onnx" in line
    one_error_line(invoke("assess", tmp_path / "data[/x].onnx"))


@pytest.mark.parametrize(
    "args",
    [
        ("assess", str(ZOO_PARENT), "--batch-size", "0"),
        ("assess", str(ZOO_PARENT), "--threads", "-1"),
        ("assess", str(ZOO_PARENT), "--throughput-batch", "0"),
        ("assess", str(ZOO_PARENT), "--eps", "1e400"),
        ("assess", str(ZOO_PARENT), "--eps", "nan"),
        ("train", "lenet5", "--lr", "nan"),
        ("train", "lenet5", "--batch-size", "0"),
        ("prune", str(ZOO_PARENT.with_suffix(".pt2")), "--rate", "nan"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(args: tuple[str, ...]) -> None:
    one_error_line(invoke(*args))


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (("train", "alexnet"), "'lenet5', 'resnet8', 'vgg11'"),
        (("assess", str(ZOO_PARENT), "--provider", "tpu"), "'auto', 'cpu', 'cuda'"),
        (("prune", str(ZOO_PARENT.with_suffix(".pt2")), "--target", "flops"), "'weights', 'macs'"),
        (("prune", str(ZOO_PARENT.with_suffix(".pt2")), "--rate-basis", "some"), "'all', 'pruned'"),
        (("sweep", "--schedule", "sometimes"), "'iterative', 'oneshot'"),
    ],
)
def test_words_outside_their_choices_are_usage_errors(args: tuple[str, ...], choices: str) -> None:
    assert f"is not one of {choices}" in one_error_line(invoke(*args))


def test_help_lists_the_choices() -> None:
    assert "<iterative|oneshot>" in invoke("prune", "--help").output


def test_rich_progress_adapts_the_library_protocol() -> None:
    from rich.progress import Progress

    from evaluator.app.console import RichProgress

    bar = Progress(disable=True)
    task = RichProgress(bar).task("training", 10)
    task.advance(3)
    task.describe("training (epoch 1)")
    (state,) = bar.tasks
    assert (state.description, state.completed, state.total) == ("training (epoch 1)", 3, 10)
    task.finish()
    assert state.completed == 10


def test_without_a_terminal_progress_is_lines_with_time_left(capsys: pytest.CaptureFixture[str]) -> None:
    """CI logs and pipes get a line per step of assess and a line per tenth of a training task, with the time left."""
    from evaluator.app import console as consoles

    now = {"t": 0.0}
    clock = lambda: now["t"]  # noqa: E731
    step = consoles.log_steps(4, clock)
    for message in ("latency", "clean accuracy", "attack"):
        step(message)
        now["t"] += 10
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["[1/4] latency (0 s so far)", "[2/4] clean accuracy (10 s so far, about 30 s left)",
                     "[3/4] attack (20 s so far, about 20 s left)"]
    task = consoles.LogTask("training", 100, clock)
    for _ in range(25):
        now["t"] += 6
        task.advance()
    task.finish()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "training: started (100 steps)" and lines[-1] == "training: done in 2 min 30 s"
    assert lines[1:-1] == ["training: 10/100 (1 min 00 s so far, about 9 min 00 s left)",
                           "training: 20/100 (2 min 00 s so far, about 8 min 00 s left)"]


def test_library_settings_are_shown_as_flags() -> None:
    assert "--samples must be at least 1, got 0" in one_error_line(invoke("assess", ZOO_PARENT, "--samples", "0"))
    assert "--batch-size must be at least 1, got 0" in one_error_line(invoke("assess", ZOO_PARENT, "--batch-size", "0"))


def test_json_target_is_checked_before_the_work(tmp_path: Path) -> None:
    line = one_error_line(invoke("assess", ZOO_PARENT, "--json", tmp_path))
    assert "is a directory" in line


@pytest.mark.parametrize(("name", "content"), [("empty.npz", b""), ("cut.npz", b"PK\x03\x04broken")])
def test_unreadable_npz_files(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    line = one_error_line(invoke("assess", ZOO_PARENT, "--dataset", tmp_path / name))
    assert "not a readable .npz" in line


def test_malformed_metadata_is_an_input_error(tmp_path: Path) -> None:
    model = onnx.load(str(ZOO_PARENT))
    for prop in model.metadata_props:
        if prop.key == "evaluator":
            data = json.loads(prop.value)
            data["source"] = "lenet5_fmnist.pt2"
            prop.value = json.dumps(data)
    onnx.save(model, str(tmp_path / "odd.onnx"))
    line = one_error_line(invoke("assess", tmp_path / "odd.onnx"))
    assert "metadata is malformed" in line


def test_l2_and_transfer_attacks_through_the_cli(tmp_path: Path) -> None:
    result = invoke("assess", ZOO_CHILD, "--attacks", "pgd-l2,transfer-pgd-linf", "--eps-l2", "0.5,1", "--eps", "8/255",
                    "--samples", "50", "--no-latency", "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    attacks = json.loads((tmp_path / "out.json").read_text())["models"][0]["attacks"]
    assert [(a["name"], a["norm"], a["epsilon"]) for a in attacks] == [
        ("pgd-l2", "L2", 0.5), ("pgd-l2", "L2", 1.0), ("transfer-pgd-linf", "Linf", 8 / 255)]
    assert attacks[0]["robust_accuracy"] >= attacks[1]["robust_accuracy"]


def test_attack_options_and_cascade_through_the_cli(tmp_path: Path) -> None:
    """NAME:KEY=VALUE reaches the attack; in the default cascade the later attack only attacks what is still robust."""
    common = ("--attacks", "square-linf:queries=50,pgd-linf:steps=5", "--samples", "60", "--no-latency")
    assert invoke("assess", ZOO_CHILD, *common, "--json", tmp_path / "cascade.json").exit_code == 0
    assert invoke("assess", ZOO_CHILD, *common, "--no-cascade", "--json", tmp_path / "each.json").exit_code == 0
    cascade = json.loads((tmp_path / "cascade.json").read_text())
    each = json.loads((tmp_path / "each.json").read_text())
    pgd, square = cascade["models"][0]["attacks"]  # white-box runs first whatever the order given
    assert (pgd["name"], pgd["options"]["steps"], square["options"]["queries"]) == ("pgd-linf", 5, 50)
    assert square["attacked"] == round(pgd["robust_accuracy"] * 60) and square["robust_accuracy"] <= pgd["robust_accuracy"]
    assert each["models"][0]["attacks"][1]["attacked"] == round(each["models"][0]["attacks"][1]["clean_accuracy"] * 60)
    assert cascade["config"]["cascade"] is True and each["config"]["cascade"] is False
    assert pgd == each["models"][0]["attacks"][0]


def test_transfer_needs_a_surrogate(tmp_path: Path) -> None:
    result = invoke("assess", ZOO_PARENT, "--attacks", "transfer-pgd-linf", "--samples", "20", "--no-latency",
                    "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "out.json").read_text())["models"][0]
    assert model["attacks"] == [] and any("transfer-pgd-linf skipped" in note for note in model["notes"])


def test_an_input_type_the_evaluator_cannot_feed_is_one_line(tmp_path: Path) -> None:
    """A graph taking int64 images (not float32, float16 or uint8) is refused before anything runs."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((784, 10), np.float32), "w")
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT), helper.make_node("Flatten", ["xf"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["y"])]
    graph = helper.make_graph(nodes, "ints", [helper.make_tensor_value_info("x", TensorProto.INT64, [None, 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], [weight])
    model = tmp_path / "ints.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    line = one_error_line(invoke("assess", model, "--dataset", "fashion-mnist", "--json", tmp_path / "out.json"))
    assert "the graph's input is INT64" in line and "ints.onnx" in line and not (tmp_path / "out.json").exists()
