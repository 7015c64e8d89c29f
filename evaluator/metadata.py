"""The self-describing model contract: JSON under the ONNX metadata_props key `evaluator`.

Written by `exporters` for every artifact and read by `evaluator assess`, so a model our exporters
made needs no other flag. Keys: format, dataset, classes, input {shape, range, layout}, architecture,
training, pruning (null for an unpruned model), parent {file, sha256} and source {file, sha256}.
"""

from __future__ import annotations

import json
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


def check_metadata(data: dict[str, Any]) -> None:
    """The fields the evaluator reads must have the types it reads them as."""
    problems = []
    if not isinstance(data.get("dataset", ""), str):
        problems.append("'dataset' must be a string")
    source = data.get("source")
    if source is not None and not (isinstance(source, dict) and isinstance(source.get("file"), str)
                                   and isinstance(source.get("sha256", ""), str)):
        problems.append("'source' must be an object with a string 'file' (and 'sha256')")
    pruning = data.get("pruning")
    if pruning is not None and not (isinstance(pruning, dict) and isinstance(pruning.get("method"), str)
                                    and isinstance(pruning.get("achieved_rate"), (int, float))):
        problems.append("'pruning' must be null or an object with 'method' and a numeric 'achieved_rate'")
    for key in ("architecture", "parent", "training"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            problems.append(f"'{key}' must be null or an object")
    if problems:
        raise EvaluatorError(f"the model's `{METADATA_KEY}` metadata is malformed: {'; '.join(problems)}")


def write_metadata(model: onnx.ModelProto, metadata: dict[str, Any]) -> None:
    """Set (or replace) the evaluator metadata entry of `model` in place."""
    kept = [prop for prop in model.metadata_props if prop.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"format": METADATA_FORMAT, **metadata}, sort_keys=True)
