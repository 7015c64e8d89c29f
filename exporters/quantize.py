"""Deployment precision: a float32 .onnx becomes an int8 (static QDQ or dynamic) or fp16 artifact beside it.

Static int8 is ONNX Runtime's QDQ quantization after its pre-processing (shape inference, Conv+BatchNorm folding):
int8 weights per output channel (symmetric; 7-bit on x86 without VNNI), activations per tensor (uint8 on x86, int8
elsewhere) with ranges calibrated on a seeded subset of the training split (never the test split). Dynamic int8 quantizes the weights and leaves activation ranges to each
run. fp16 converts weights and compute to float16 and keeps the graph's inputs and outputs float32 unless asked.

The artifact carries its parent's metadata plus a `precision` record (method, calibration, parent file and sha256,
the tool); its card (NAME.json) adds the agreement with the float parent on the whole test split, which is
reported, not required. The exporter's per-node annotations (module paths, FX nodes) are left out of the artifact:
the runtime does not read them.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from evaluator.assessment import check_fit
from evaluator.datasets import Dataset, load_dataset, recorded_dataset
from evaluator.errors import EvaluatorError
from evaluator.files import check_name, sha256_of, write_bytes_atomic, write_text_atomic
from evaluator.graph_input import image_input
from evaluator.metadata import METADATA_FORMAT, write_metadata
from evaluator.precision import FP16, FP32, INT8, INT8_DYNAMIC, QUANTIZED_PRECISIONS, graph_precision, recorded_precision
from evaluator.progress import Step, silent_step
from evaluator.environment import int8_instructions
from evaluator.profile import external_data_sha256
from evaluator.runtime import CPU_EP, OnnxClassifier, first_line, import_onnxruntime, unoptimised_logits

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
CALIBRATION_BATCH = 64


@dataclass(frozen=True)
class QuantizeOptions:
    """precision: one of QUANTIZED_PRECISIONS; calibration_*: static int8 only (samples drawn from the training split
    with `seed`); dataset: as load_dataset takes it (default: the one the parent's metadata names); fp16_io: an fp16
    graph takes and returns float16 (default: float32 at its edges)."""

    precision: str
    calibration_samples: int = 512
    calibration_method: str = "minmax"
    seed: int = 0
    dataset: str | None = None
    data_dir: Path | None = None
    fp16_io: bool = False
    threads: int | None = None
    reduce_range: bool | None = None  # int8: 7-bit weights; None: when this CPU is x86 without VNNI (see reduce_range)
    activations: str | None = None  # int8: "uint8" or "int8" activations; None: uint8 on x86, int8 elsewhere


@dataclass(frozen=True)
class PrecisionCheck:
    """The quantized graph against its float parent on the whole test split (ONNX Runtime, CPU)."""

    samples: int
    top1_agreement: float
    parent_accuracy: float
    accuracy: float
    max_abs_logit_diff: float
    kernel_max_abs_diff: float | None = None  # int8: ONNX Runtime's fused kernels against the graph's QDQ arithmetic
    kernel_agreement: float | None = None  # ... and the share of equal top-1 labels between them

    @property
    def accuracy_drop(self) -> float:
        return self.parent_accuracy - self.accuracy


@dataclass(frozen=True)
class QuantizedArtifact:
    onnx: Path
    card: Path
    check: PrecisionCheck
    metadata: dict[str, Any]


def check_options(options: QuantizeOptions) -> None:
    if options.precision not in QUANTIZED_PRECISIONS:
        wanted = ", ".join(QUANTIZED_PRECISIONS)
        what = "is the float parent's precision" if options.precision == FP32 else "is unknown"
        raise EvaluatorError(f"precision {options.precision!r} {what}: expected one of {wanted}", field="precision")
    if options.calibration_method not in CALIBRATION_METHODS:
        raise EvaluatorError(f"unknown calibration method {options.calibration_method!r}: expected one of "
                             f"{', '.join(CALIBRATION_METHODS)}", field="calibration_method")
    given = [flag for flag, value, precision in (("reduce_range", options.reduce_range, INT8),
                                                 ("activations", options.activations, INT8),
                                                 ("fp16_io", options.fp16_io or None, FP16)) if value is not None and options.precision != precision]
    if given:
        raise EvaluatorError(f"{given[0]} is for {'fp16' if given[0] == 'fp16_io' else 'int8 (static)'} only, not "
                             f"{options.precision}", field=given[0])
    if options.activations not in (None, "uint8", "int8"):
        raise EvaluatorError(f"activations must be uint8 or int8, got {options.activations!r}", field="activations")
    if options.calibration_samples < 1:
        raise EvaluatorError(f"calibration samples must be at least 1, got {options.calibration_samples}")
    if not 0 <= options.seed < 2**63:
        raise EvaluatorError(f"seed must be a whole number from 0 to 2**63 - 1, got {options.seed}")


def default_output(parent: Path, precision: str) -> Path:
    """NAME_<precision>.onnx beside the parent, where the parent's .pt2 (its source) stays in reach."""
    return Path(parent).with_name(f"{Path(parent).stem}_{precision}.onnx")


def quantize_artifact(parent: Path, options: QuantizeOptions, out: Path | None = None, progress: Step = silent_step,
                      card_extra: dict[str, Any] | None = None) -> QuantizedArtifact:
    """Quantize the float32 model at `parent`, verify it on the test split, then write OUT.onnx and OUT.json (OUT
    defaults to default_output; card_extra: more keys of the card). Nothing is written when quantizing or the check
    fails; the card is written last (a card that names the .onnx's sha256 marks a finished artifact)."""
    check_options(options)
    out = Path(out) if out is not None else default_output(parent, options.precision)
    if out.suffix != ".onnx":
        raise EvaluatorError(f"the output must be an .onnx file, got {out}")
    check_name(out.name, "the output file")
    if out.resolve() == Path(parent).resolve():
        raise EvaluatorError("out would overwrite the parent: choose another output file", field="out")
    float_model = OnnxClassifier(parent, "cpu", threads=options.threads)
    found = graph_precision(float_model.model)
    recorded = recorded_precision(float_model.metadata)
    if found != FP32 or recorded:
        name = recorded.get("name", found) if recorded else found
        raise EvaluatorError(f"{parent} is already {name}: quantize its float32 parent instead")
    dataset = quantization_dataset(parent, float_model, options)
    progress(f"{Path(parent).name}: {options.precision}")
    stripped = without_node_annotations(float_model.model)
    if options.precision == INT8:
        calibration = calibration_inputs(float_model, dataset, options)
        proto, record = quantize_static(stripped, calibration, options, float_model.fixed_batch or CALIBRATION_BATCH)
        record["calibration"]["dataset"] = dataset.name
    elif options.precision == INT8_DYNAMIC:
        proto, record = quantize_dynamic(stripped)
    else:
        proto, record = convert_fp16(stripped, options.fp16_io)
    record["parent"] = {"file": Path(parent).name, "sha256": sha256_of(Path(parent))}
    data_sha256 = external_data_sha256(Path(parent))
    if data_sha256 is not None:  # the .onnx alone would not say which weights the artifact was made from
        record["parent"]["data_sha256"] = data_sha256
    metadata = {key: value for key, value in (float_model.metadata or {}).items() if key != "format"}
    metadata["precision"] = record
    write_metadata(proto, metadata)
    data = proto.SerializeToString()
    progress(f"{Path(parent).name}: {options.precision} against its float parent")
    check = compare_with_parent(float_model, data, dataset, options.threads)
    card = {
        "name": out.stem,
        "files": {"onnx": {"file": out.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                           "gzip_bytes": len(gzip.compress(data, 9))}},
        "metadata": {"format": METADATA_FORMAT, **metadata},
        "precision_check": {**asdict(check), "accuracy_drop": check.accuracy_drop},
        **(card_extra or {}),
    }
    card_path = out.with_suffix(".json")
    write_bytes_atomic(out, data)
    write_text_atomic(card_path, json.dumps(card, indent=2, sort_keys=True) + "\n")
    return QuantizedArtifact(out, card_path, check, metadata)


def quantization_dataset(parent: Path, model: OnnxClassifier, options: QuantizeOptions) -> Dataset:
    """The dataset behind calibration and the check: options.dataset, else the parent's recorded one; its images must
    fit the model's input."""
    recorded = (model.metadata or {}).get("dataset")
    name = options.dataset or (recorded and recorded_dataset(recorded, Path(parent)))
    if not name:
        raise EvaluatorError(f"dataset is needed: {parent} carries no evaluator metadata naming its data", field="dataset")
    test_only = options.precision != INT8
    dataset = load_dataset(name, options.data_dir, test_only=test_only, input_shape=model.input_shape)
    check_fit(model, dataset)
    return dataset


def calibration_inputs(model: OnnxClassifier, dataset: Dataset, options: QuantizeOptions) -> np.ndarray:
    """(n, ...) the first calibration_samples of a seeded permutation of the training split, as the graph takes them."""
    if dataset.train is None or len(dataset.train) == 0:
        raise EvaluatorError(f"dataset {dataset.name!r} has no training split to calibrate on (the test split is kept "
                             "for the assessment)")
    count = min(options.calibration_samples, len(dataset.train))
    order = np.random.default_rng(options.seed).permutation(len(dataset.train))
    if model.fixed_batch:  # whole batches of the graph's fixed size, of real images (zeros would shift the ranges)
        count = max(model.fixed_batch, count - count % model.fixed_batch)
        order = np.resize(order, count)
    chosen = np.sort(order[:count])
    return native_inputs(model, dataset.train.x[chosen])


def native_inputs(model: OnnxClassifier, x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) in [0, 1] as the deployed graph's own input (layout, range, dtype): through the adapter's nodes
    in front of the graph (evaluator.graph_input.adapt); x itself for a plain graph."""
    if model.graph is model.model:
        return x
    value = image_input(model.model)
    front = copy.deepcopy(model.graph)
    del front.graph.output[:]
    front.graph.output.append(helper.make_tensor_value_info(value.name, value.type.tensor_type.elem_type, None))
    ort = import_onnxruntime()
    session = ort.InferenceSession(front.SerializeToString(), providers=[CPU_EP])
    name = session.get_inputs()[0].name
    size = model.fixed_batch or 256  # x holds whole batches of a fixed one (calibration_inputs)
    return np.concatenate([session.run(None, {name: x[i:i + size]})[0] for i in range(0, len(x), size)])


class CalibrationBatches:
    """ONNX Runtime's CalibrationDataReader over (N, ...) inputs in batches of `size` (a fixed batch's whole ones)."""

    def __init__(self, input_name: str, x: np.ndarray, size: int = CALIBRATION_BATCH) -> None:
        self.batches = iter([{input_name: x[i:i + size]} for i in range(0, len(x), size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def without_node_annotations(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without the exporter's per-node metadata (module paths, FX nodes, stack traces)."""
    stripped = copy.deepcopy(model)
    for node in stripped.graph.node:
        del node.metadata_props[:]
    return stripped


def pre_processed(model: onnx.ModelProto, folder: Path) -> Path:
    """ONNX Runtime's quantization pre-processing (shape inference, graph optimisations such as Conv+BatchNorm
    folding) written to `folder`; its path."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, target = folder / "float.onnx", folder / "prepared.onnx"
    onnx.save(model, str(source))
    try:
        quant_pre_process(str(source), str(target))
    except Exception as error:  # its shape inference and optimiser raise their own types
        raise EvaluatorError(f"ONNX Runtime's quantization pre-processing failed: {first_line(error)}") from None
    return target


def quantize_static(model: onnx.ModelProto, calibration: np.ndarray, options: QuantizeOptions,
                    batch: int = CALIBRATION_BATCH) -> tuple[onnx.ModelProto, dict[str, Any]]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static

    reduce_range = resolved_reduce_range(options.reduce_range)
    activations = resolved_activations(options.activations)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    input_name = image_input(model).name
    with tempfile.TemporaryDirectory() as folder:
        prepared = pre_processed(model, Path(folder))
        target = Path(folder) / "int8.onnx"
        try:
            ort_quantize_static(str(prepared), str(target), CalibrationBatches(input_name, calibration, batch),
                                quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                                activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
                                weight_type=QuantType.QInt8, calibrate_method=methods[options.calibration_method],
                                nodes_to_exclude=final_normalisers(onnx.load(str(prepared))),
                                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
        except Exception as error:
            raise EvaluatorError(f"ONNX Runtime's static quantization failed: {first_line(error)}") from None
        proto = onnx.load(str(target))
    record = {"name": INT8, "method": "static, QDQ (ONNX Runtime quantize_static)",
              "weights": f"int8{' in a 7-bit range' if reduce_range else ''}, per output channel, symmetric",
              "activations": f"{activations}, per tensor, asymmetric", "reduce_range": reduce_range,
              "io": "float32", "tool": tool_version(),
              "calibration": {"split": "train", "samples": int(len(calibration)), "seed": options.seed,
                              "method": options.calibration_method}}
    return proto, record


def final_normalisers(model: onnx.ModelProto) -> list[str]:
    """Names of the Softmax / LogSoftmax nodes that make a graph output: left in float, so that the scores keep
    their resolution (a quantized softmax puts probabilities on 256 levels, ties and zeros that blind score-based
    attacks) and the logits in front of them stay reachable for gradients."""
    outputs = {value.name for value in model.graph.output}
    return [node.name for node in model.graph.node
            if node.op_type in ("Softmax", "LogSoftmax") and node.name and set(node.output) & outputs]


def resolved_reduce_range(asked: bool | None) -> bool:
    """`asked`, or when None: whether this CPU is x86 without VNNI."""
    if asked is not None:
        return asked
    isa = int8_instructions()
    return bool(isa["x86"] and not isa["vnni"])


def resolved_activations(asked: str | None) -> str:
    """`asked`, or when None: uint8 on x86 (what ONNX Runtime's int8 CPU kernels take there), int8 elsewhere."""
    return asked or ("uint8" if int8_instructions()["x86"] else "int8")


def quantize_dynamic(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, Any]]:
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        prepared = pre_processed(model, Path(folder))
        target = Path(folder) / "int8_dynamic.onnx"
        try:
            ort_quantize_dynamic(str(prepared), str(target), per_channel=True, weight_type=QuantType.QInt8)
        except Exception as error:
            raise EvaluatorError(f"ONNX Runtime's dynamic quantization failed: {first_line(error)}") from None
        proto = onnx.load(str(target))
    record = {"name": INT8_DYNAMIC, "method": "dynamic (ONNX Runtime quantize_dynamic)",
              "weights": "int8, symmetric, per output channel where the kernel takes it (MatMul), per tensor for Conv", "activations": "uint8, ranges computed per run",
              "io": "float32", "tool": tool_version()}
    return proto, record


def convert_fp16(model: onnx.ModelProto, fp16_io: bool) -> tuple[onnx.ModelProto, dict[str, Any]]:
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        proto = convert_float_to_float16(copy.deepcopy(model), keep_io_types=not fp16_io)
        OnnxModel(proto).topological_sort()  # the converter appends the casts it inserts at the edges
    except Exception as error:
        raise EvaluatorError(f"the float16 conversion failed: {first_line(error)}") from None
    record = {"name": FP16, "method": "float16 conversion (onnxruntime.transformers.float16)",
              "weights": "float16", "activations": "float16", "io": "float16" if fp16_io else "float32",
              "tool": tool_version()}
    return proto, record


def tool_version() -> str:
    return f"onnxruntime {import_onnxruntime().__version__}"


def compare_with_parent(parent: OnnxClassifier, data: bytes, dataset: Dataset, threads: int | None) -> PrecisionCheck:
    """Load the candidate like any deployed graph (it must load and run) and compare it with the parent on the test
    split: top-1 agreement, both accuracies, the largest logit difference."""
    with tempfile.TemporaryDirectory() as folder:
        candidate_path = Path(folder) / "candidate.onnx"
        candidate_path.write_bytes(data)
        candidate = OnnxClassifier(candidate_path, "cpu", threads=threads)
        logits = candidate.logits(dataset.test.x)
        kernel_diff = kernel_agreement = None
        if graph_precision(candidate.model) == INT8:
            exact = unoptimised_logits(candidate, dataset.test.x)
            kernel_diff = float(np.abs(logits - exact).max())
            kernel_agreement = float((logits.argmax(1) == exact.argmax(1)).mean())
    reference = parent.logits(dataset.test.x)
    labels, reference_labels = logits.argmax(1), reference.argmax(1)
    return PrecisionCheck(len(dataset.test), float((labels == reference_labels).mean()),
                          float((reference_labels == dataset.test.y).mean()), float((labels == dataset.test.y).mean()),
                          float(np.abs(logits - reference).max()), kernel_diff, kernel_agreement)
