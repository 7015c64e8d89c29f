"""Crafted .pt2 archives: every way torch.export.load would run code is refused before torch reads the file.

Each case rewrites the zoo's LeNet-5 .pt2 so that loading it the way torch does would create a sentinel file;
the evaluator must refuse it with one line, exit 2, and the sentinel must not exist. A few cases also load the
crafted file with plain torch.export.load to show the payload is live (it does create the sentinel there).
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Callable

import pytest
import torch
from typer.testing import CliRunner

from evaluator.app.cli import app
from evaluator.errors import EvaluatorError
from evaluator.pt2_safety import UnsafeArchive, check_expression, scan_pickle
from evaluator.source import load_source
from exporters.artifacts import read_pt2_metadata
from tests.conftest import ROOT, ZOO_PARENT

ZOO_PT2 = ROOT / "models" / "lenet5_fmnist.pt2"
PREFIX = "archive/"
Entries = dict[str, bytes]


class Payload:
    """Pickles as a call of builtins.exec that creates `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return exec, (f"open({str(self.path)!r}, 'w').close()",)


def payload_code(path: Path) -> str:
    return f"__import__('builtins').open({str(path)!r}, 'w').close()"


def torch_save_with_pickle(pickled: bytes) -> bytes:
    """A torch.save zip whose data.pkl is `pickled`."""
    buffer = io.BytesIO()
    torch.save(torch.zeros(2), buffer)
    return rewrite_zip(buffer.getvalue(), lambda entries: {
        name: (pickled if name.endswith("data.pkl") else payload) for name, payload in entries.items()})


def rewrite_zip(data: bytes, change: Callable[[Entries], Entries]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in change(entries).items():
            archive.writestr(name, payload)
    return out.getvalue()


def edit_program(edit: Callable[[dict], None]) -> Callable[[Entries], Entries]:
    def change(entries: Entries) -> Entries:
        program = json.loads(entries[PREFIX + "models/model.json"])
        edit(program)
        return {**entries, PREFIX + "models/model.json": json.dumps(program).encode()}
    return change


def sample_inputs_pickle(sentinel: Path, protocol: int) -> Callable[[Entries], Entries]:
    return lambda entries: {**entries, PREFIX + "data/sample_inputs/model.pt":
                            torch_save_with_pickle(pickle.dumps(Payload(sentinel), protocol=protocol))}


def memo_trick_pickle(sentinel: Path) -> bytes:
    """STACK_GLOBAL whose module and name come from the memo after decoy strings were pushed and popped: a scanner
    that looks back at the last two strings sees collections.OrderedDict."""
    code = f"open({str(sentinel)!r}, 'w').close()".encode()
    short = lambda text: b"\x8c" + bytes([len(text)]) + text  # noqa: E731  SHORT_BINUNICODE
    return (b"\x80\x04" + short(b"builtins") + b"\x94" + short(b"exec") + b"\x94"  # memo 0, 1
            + short(b"collections") + short(b"OrderedDict") + b"00"  # decoys, popped
            + b"h\x00h\x01\x93" + short(code) + b"\x85R.")  # BINGET 0, BINGET 1, STACK_GLOBAL, TUPLE1, REDUCE


def pickled_weight(sentinel: Path) -> Callable[[Entries], Entries]:
    def change(entries: Entries) -> Entries:
        name = PREFIX + "data/weights/model_weights_config.json"
        config = json.loads(entries[name])
        first = next(iter(config["config"].values()))
        first["use_pickle"] = True
        return {**entries, name: json.dumps(config).encode(),
                PREFIX + "data/weights/" + first["path_name"]: torch_save_with_pickle(pickle.dumps(Payload(sentinel), 2))}
    return change


def opaque_constant(sentinel: Path) -> Callable[[Entries], Entries]:
    def change(entries: Entries) -> Entries:
        config = {"config": {"c": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}}}
        return {**entries, PREFIX + "data/constants/model_constants_config.json": json.dumps(config).encode(),
                PREFIX + "data/constants/opaque_obj_0": pickle.dumps(Payload(sentinel))}
    return change


def legacy_weights(sentinel: Path) -> Callable[[Entries], Entries]:
    return lambda entries: {**entries, PREFIX + "data/weights/model.pt": torch_save_with_pickle(pickle.dumps(Payload(sentinel), 2))}


def old_format(sentinel: Path) -> Callable[[Entries], Entries]:
    return lambda entries: {"version": b"8.20", "serialized_exported_program.json": entries[PREFIX + "models/model.json"],
                            "serialized_state_dict.pt": torch_save_with_pickle(pickle.dumps(Payload(sentinel), 2)),
                            "serialized_constants.pt": b"", "serialized_example_inputs.pt": b""}


def in_spec_key(sentinel: Path) -> Callable[[dict], None]:
    def edit(program: dict) -> None:
        signature = program["graph_module"]["module_call_graph"][0]["signature"]
        spec = json.loads(signature["in_spec"])
        spec[1]["children_spec"][1]["context"] = json.dumps([f"x'] + {payload_code(sentinel)} + L['"])
        signature["in_spec"] = json.dumps(spec)
    return edit


def set_first_node(key: str, value: object) -> Callable[[dict], None]:
    return lambda program: program["graph_module"]["graph"]["nodes"][0].__setitem__(key, value)


def set_expr(sentinel: Path) -> Callable[[dict], None]:
    return lambda program: program["graph_module"]["graph"]["tensor_values"]["x"]["sizes"][0]["as_expr"].__setitem__(
        "expr_str", payload_code(sentinel))


CASES: dict[str, Callable[[Path], Callable[[Entries], Entries]]] = {
    "sample inputs pickle (GLOBAL)": lambda s: sample_inputs_pickle(s, 2),
    "sample inputs pickle (STACK_GLOBAL)": lambda s: sample_inputs_pickle(s, 4),
    "sample inputs pickle (memo trick)": lambda s: lambda e: {**e, PREFIX + "data/sample_inputs/model.pt":
                                                              torch_save_with_pickle(memo_trick_pickle(s))},
    "pickled weight": pickled_weight,
    "opaque constant": opaque_constant,
    "legacy weights file": legacy_weights,
    "legacy archive layout": old_format,
    "aotinductor library": lambda s: lambda e: {**e, PREFIX + "data/aotinductor/model/model.so": b"\x7fELF"},
    "guards code": lambda s: edit_program(lambda p: p.__setitem__("guards_code", [payload_code(s)])),
    "sympy expression": lambda s: edit_program(set_expr(s)),
    "node target": lambda s: edit_program(set_first_node("target", "torch.serialization.os.system")),
    "input key spliced into guards": lambda s: edit_program(in_spec_key(s)),
    "string user input": lambda s: edit_program(lambda p: p["graph_module"]["signature"]["input_specs"][-1].__setitem__(
        "user_input", {"arg": {"as_string": payload_code(s)}})),
    "node name": lambda s: edit_program(set_first_node("name", f"x; {payload_code(s)}")),
    "duplicate entry": lambda s: lambda e: e,  # see craft
}


def craft(tmp_path: Path, case: str) -> tuple[Path, Path]:
    """The crafted .pt2 (with the zoo's .onnx and .json beside it) and the sentinel its payload would create."""
    sentinel = tmp_path / "payload-ran"
    crafted = tmp_path / "model" / "lenet5_fmnist.pt2"
    crafted.parent.mkdir()
    data = rewrite_zip(ZOO_PT2.read_bytes(), CASES[case](sentinel))
    if case == "duplicate entry":  # a second sample_inputs entry: two zip readers may pick different ones
        buffer = io.BytesIO(data)
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.writestr(PREFIX + "data/sample_inputs/model.pt", torch_save_with_pickle(pickle.dumps(Payload(sentinel), 2)))
        data = buffer.getvalue()
    crafted.write_bytes(data)
    for suffix in (".onnx", ".json"):
        shutil.copyfile(ZOO_PARENT.with_suffix(suffix), crafted.with_suffix(suffix))
    return crafted, sentinel


@pytest.mark.filterwarnings("ignore::UserWarning")  # zipfile warns about the duplicate name it writes
@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_archive_is_refused_by_the_python_api(tmp_path: Path, case: str) -> None:
    crafted, sentinel = craft(tmp_path, case)
    for load in (load_source, read_pt2_metadata):
        with pytest.raises(EvaluatorError) as error:
            load(crafted)
        assert "\n" not in str(error.value)
    assert not sentinel.exists()


@pytest.mark.parametrize("case", ["sample inputs pickle (memo trick)", "guards code", "sympy expression"])
def test_the_payloads_are_live_in_plain_torch(tmp_path: Path, case: str) -> None:
    """Without the checks torch runs them: the tests above would catch a regression."""
    crafted, sentinel = craft(tmp_path, case)
    try:
        torch.export.load(str(crafted)).module()(torch.zeros(2, 1, 28, 28))  # guards run on the first call
    except Exception:  # the graph may be broken after the payload ran; only the payload matters
        pass
    assert sentinel.exists()


@pytest.mark.parametrize("case", ["sample inputs pickle (STACK_GLOBAL)", "guards code", "pickled weight"])
@pytest.mark.parametrize("command", ["assess", "prune", "sweep"])
def test_crafted_archive_is_refused_by_every_command(tmp_path: Path, case: str, command: str) -> None:
    crafted, sentinel = craft(tmp_path, case)
    out = tmp_path / "out"
    args = {"assess": ["assess", str(crafted.with_suffix(".onnx")), "--samples", "10", "--no-latency",
                       "--attacks", "pgd-linf", "--json", str(out / "r.json")],
            "prune": ["prune", str(crafted), "--rate", "2", "--finetune-epochs", "0", "--out", str(out)],
            "sweep": ["sweep", "--source", str(crafted), "--methods", "filter-l1", "--rates", "1,2", "--out", str(out),
                      "--samples", "10", "--no-latency"]}[command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not sentinel.exists()
    assert not out.exists() or not any(out.rglob("*"))


def test_the_zoo_archives_pass_and_load() -> None:
    for pt2 in sorted((ROOT / "models").glob("*.pt2")):
        model = load_source(pt2)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_refusal_names_the_global() -> None:
    with pytest.raises(UnsafeArchive, match="builtins.exec"):
        scan_pickle(pickle.dumps(Payload(Path("/nonexistent")), protocol=2), "x")
    scan_pickle(pickle.dumps({"a": 1, "b": [1.0, "text"]}), "plain data passes")


@pytest.mark.parametrize("expression", ["Symbol('s77', positive=True, integer=True)", "2*s0 + 1", "FloorDiv(s1, 2)",
                                        "Max(1, s0)", "Pow(s0, 2)", "s0**2 + 3*s1"])
def test_symbolic_expressions_torch_writes_pass(expression: str) -> None:
    check_expression(expression, "x", "symbolic expression")


@pytest.mark.parametrize("expression", ["eval(chr(49))", "s0.__class__", "Symbol('a b')", "[s0 for s0 in ()]",
                                        "lambda: 0", "__import__('os')", "9**9**9**9", "Pow(9, Pow(9, 9))",
                                        "PowByNatural(s0, 100000)", "Integer(10**100)", "s0 * 123456789012345678901234567890"])
def test_symbolic_expressions_with_code_are_refused(expression: str) -> None:
    with pytest.raises(UnsafeArchive):
        check_expression(expression, "x", "symbolic expression")


def test_shape_guards_pass_and_code_in_guards_does_not() -> None:
    check_expression("L['x'].size()[0] <= 1048576 and L['x'].size()[1] == 3", "x", "guard", guard=True)
    for guard in ("L['x'].size.__globals__", "L['x'].size()[0] == 9**9**9**9"):
        with pytest.raises(UnsafeArchive):
            check_expression(guard, "x", "guard", guard=True)


def zero_record_of_a_terabyte(entries: Entries) -> Entries:
    """A weight whose record is empty but whose sizes declare 2^40 values: torch would make zeros of that size."""
    name = PREFIX + "data/weights/model_weights_config.json"
    config = json.loads(entries[name])
    first = next(iter(config["config"].values()))
    first["tensor_meta"]["sizes"] = [{"as_int": 1 << 20}, {"as_int": 1 << 20}]
    return {**entries, name: json.dumps(config).encode(), PREFIX + "data/weights/" + first["path_name"]: b""}


@pytest.mark.parametrize("case", ["zero record", "zip bomb"])
def test_archives_that_would_take_gigabytes_are_refused_before_unpacking(tmp_path: Path, case: str) -> None:
    import tracemalloc

    crafted = tmp_path / "bomb.pt2"
    if case == "zero record":
        crafted.write_bytes(rewrite_zip(ZOO_PT2.read_bytes(), zero_record_of_a_terabyte))
    else:
        buffer = io.BytesIO(ZOO_PT2.read_bytes())
        with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(PREFIX + "extra/padding.txt", b"0" * (256 << 20))  # 256 MiB in about 250 KiB
        crafted.write_bytes(buffer.getvalue())
    tracemalloc.start()
    try:
        with pytest.raises(EvaluatorError, match="declares|unpacks"):
            load_source(crafted)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20
