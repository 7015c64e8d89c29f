"""The self-describing model contract: JSON under the ONNX metadata_props key `evaluator`.

Written by `exporters` for every artifact and read by `evaluator assess`, so a model our exporters
made needs no other flag (`evaluator describe` writes it for a foreign model). Keys: format, dataset, classes, input
{shape, range, layout, dtype, mean, std, output, scores: see evaluator.graph_input}, architecture,
training, pruning (null for an unpruned model), parent {file, sha256}, source {file, sha256} and precision (only
for a quantized or fp16 artifact: evaluator quantize; its parent is the float32 .onnx).
"""

from __future__ import annotations

import json
import math
from typing import Any

import onnx

from evaluator.errors import EvaluatorError

METADATA_KEY = "evaluator"
METADATA_FORMAT = "evaluator-model/1"


def read_metadata(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The evaluator metadata of an ONNX model, or None when the model carries none."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                data = json.loads(prop.value)
            except json.JSONDecodeError as error:
                raise EvaluatorError(f"the model's `{METADATA_KEY}` metadata is not valid JSON: {error}") from None
            if not isinstance(data, dict):
                raise EvaluatorError(f"the model's `{METADATA_KEY}` metadata is not a JSON object")
            check_metadata(data)
            return data
    return None


def check_metadata(data: dict[str, Any], owner: str = "the model's") -> None:
    """The fields the evaluator and the exporters read must have the types they read them as (a file that lies
    about them gets one line, not a traceback deep in the work)."""
    problems = [f"'{path}' {expected}" for path, expected in metadata_problems(data)]
    if problems:
        raise EvaluatorError(f"{owner} `{METADATA_KEY}` metadata is malformed: {'; '.join(problems[:3])}")


Number = (int, float)
FILE_RECORD = {"file": str, "sha256": str}
CENSUS = dict.fromkeys(("params", "nonzero", "layer_weights", "layer_nonzero", "macs"), int)
SCHEMA: dict[str, Any] = {  # key -> type, or a nested schema of an optional object; every key may be absent
    "dataset": str,
    "classes": [str],
    "input": {"shape": [int], "range": [Number], "layout": str, "dtype": str, "mean": [Number], "std": [Number],
              "output": str, "scores": str},
    "architecture": {"name": str, "in_channels": int, "image_size": int, "num_classes": int, "width": Number,
                     "mean": [Number], "std": [Number]},
    "training": {"validation_size": int, "epochs": int, "seed": int},
    "source": FILE_RECORD,
    "parent": {"file": str, "sha256": str, "source_file": str, "source_sha256": str},
    "pruning": {"method": str, "achieved_rate": Number, "layers": [str], "root": CENSUS, "after": CENSUS,
                "root_source": FILE_RECORD, "target": {"rate": Number}},
    "precision": {"name": str, "method": str, "weights": str, "activations": str, "io": str, "tool": str, "reduce_range": bool,
                  "calibration": {"dataset": str, "split": str, "samples": int, "seed": int, "method": str},
                  "parent": {"file": str, "sha256": str, "data_sha256": str}},
}


def metadata_problems(data: Any, schema: Any = SCHEMA, path: str = "") -> list[tuple[str, str]]:
    """(key path, what it must be) for every value of `data` whose type does not fit `schema`; None is allowed."""
    if data is None:
        return []
    if isinstance(schema, dict):
        if not isinstance(data, dict):
            return [(path.rstrip("."), "must be an object")]
        return [problem for key, inner in schema.items() for problem in metadata_problems(data.get(key), inner, f"{path}{key}.")]
    key = path.rstrip(".")
    if isinstance(schema, list):
        if not isinstance(data, list) or any(not fits(item, schema[0]) for item in data):
            return [(key, f"must be a list of {plural(schema[0])}")]
        return []
    return [] if fits(data, schema) else [(key, f"must be {type_name(schema)}")]


def fits(value: Any, kind: Any) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to a metadata reader
        return kind is bool
    return isinstance(value, kind) and (not isinstance(value, float) or math.isfinite(value))


def type_name(kind: Any) -> str:
    return "a number" if kind == Number else {str: "a string", int: "an integer"}.get(kind, str(kind))


def plural(kind: Any) -> str:
    return "numbers" if kind == Number else {str: "strings", int: "integers"}.get(kind, str(kind))


def write_metadata(model: onnx.ModelProto, metadata: dict[str, Any]) -> None:
    """Set (or replace) the evaluator metadata entry of `model` in place."""
    kept = [prop for prop in model.metadata_props if prop.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"format": METADATA_FORMAT, **metadata}, sort_keys=True)
