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
            return data
    return None


def write_metadata(model: onnx.ModelProto, metadata: dict[str, Any]) -> None:
    """Set (or replace) the evaluator metadata entry of `model` in place."""
    kept = [prop for prop in model.metadata_props if prop.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"format": METADATA_FORMAT, **metadata}, sort_keys=True)
