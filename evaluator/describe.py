"""Describing a foreign model once: how its graph takes images and gives scores, and what data it classifies, written
into the same metadata block (`evaluator` in metadata_props) as the models the exporters make, so that a later
`assess` needs no flags. The graph itself is not changed; the copy's sha256 differs by the metadata only."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from evaluator.assessment import check_fit
from evaluator.checks import above_chance
from evaluator.datasets import dataset_record, load_dataset
from evaluator.errors import EvaluatorError
from evaluator.files import write_bytes_atomic
from evaluator.input_options import InputOverrides
from evaluator.graph_input import INPUT_TYPES, image_input
from evaluator.metadata import write_metadata
from evaluator.profile import external_data_files
from evaluator.results import Check
from evaluator.runtime import OnnxClassifier


@dataclass(frozen=True)
class Description:
    """What was written: the new model's path, its metadata block, and its clean accuracy on the dataset's test split
    (with the above-chance check: a described model that guesses has the wrong settings)."""

    path: Path
    metadata: dict[str, Any]
    clean_accuracy: float
    test_samples: int
    chance: Check


def describe_model(path: Path, out: Path, dataset: str, data_dir: Path | None = None,
                   inputs: InputOverrides = InputOverrides()) -> Description:
    """Check the settings on the dataset (the graph runs and classifies clearly better than chance), then write a copy
    of the model at `out` whose metadata records them (an external data file is written beside it as OUT.data)."""
    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise EvaluatorError(f"out {out} is the model itself: write the described copy to another file", field="out")
    classifier = OnnxClassifier(path, "cpu", inputs=inputs)
    data = load_dataset(dataset, data_dir, test_only=True, input_shape=classifier.input_shape)
    check_fit(classifier, data)
    accuracy = float((classifier.predict(data.test.x) == data.test.y).mean())
    chance = above_chance(accuracy, len(data.test), classifier.num_classes)
    spec = classifier.graph_input
    element = image_input(classifier.model).type.tensor_type.elem_type
    recorded = {**(classifier.metadata or {}), "dataset": dataset_record(data.name, out.parent),
                "classes": list(data.classes),
                "input": {"shape": list(classifier.input_shape), "range": [0, spec.scale], "layout": spec.layout,
                          "dtype": INPUT_TYPES[element], "mean": list(spec.mean), "std": list(spec.std),
                          "output": spec.output or classifier.model.graph.output[0].name, "scores": spec.scores}}
    recorded.pop("format", None)
    model = onnx.ModelProto()
    model.CopyFrom(classifier.model)  # the deployed graph as loaded (external data included), not read again
    write_metadata(model, recorded)
    save_model(model, out, bool(external_data_files(path)))
    return Description(out, recorded, accuracy, len(data.test), chance)


def save_model(model: onnx.ModelProto, out: Path, external: bool) -> None:
    """The model at `out`, written atomically; with `external`, its weights in OUT.data beside it (written first)."""
    if not external:
        write_bytes_atomic(out, model.SerializeToString())
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as folder:
        staged = Path(folder) / out.name
        onnx.save(model, str(staged), save_as_external_data=True, location=f"{out.name}.data", size_threshold=1024)
        (Path(folder) / f"{out.name}.data").replace(out.parent / f"{out.name}.data")
        staged.replace(out)
