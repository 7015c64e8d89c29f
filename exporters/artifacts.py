"""Verified export: one model becomes NAME.pt2 (torch.export source), NAME.onnx (deployed) and NAME.json (card).

The export is checked before anything is written: onnx.checker, ONNX Runtime against PyTorch on the
whole test split (max |logit diff| <= 1e-4 x (1 + the largest |logit|), identical top-1). Files are written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from evaluator.agreement import MAX_LOGIT_DIFF, MAX_LOGIT_RELATIVE
from evaluator.datasets import Split
from evaluator.errors import EvaluatorError
from evaluator.files import sha256_of, stem_file, write_bytes_atomic, write_text_atomic
from evaluator.metadata import write_metadata
from evaluator.runtime import import_onnxruntime
from evaluator.source import PT2_METADATA_FILE, load_program
from exporters.architectures import ArchSpec, build_model, reshape_to_state
from exporters.rebuild import EXPORTED, input_shape, rebuild_program


@dataclass(frozen=True)
class Artifacts:
    pt2: Path
    onnx: Path
    card: Path


@dataclass(frozen=True)
class ExportCheck:
    """How closely the ONNX graph reproduces PyTorch on the test split."""

    samples: int
    max_abs_logit_diff: float
    limit: float
    top1_agreement: float
    torch_accuracy: float
    onnx_accuracy: float


STACK_TRACE_KEY = "pkg.torch.onnx.stack_trace"  # ONNX node metadata written by torch.onnx.export


def export_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """torch.export with a dynamic batch dimension; `model` must be in eval mode. The graph keeps no stack traces:
    they hold the absolute paths of this checkout's source files, which would differ between machines (and leak them)
    and make the same model a different file."""
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)
    return program


def to_onnx(program: torch.export.ExportedProgram, example: torch.Tensor) -> onnx.ModelProto:
    """The ONNX graph of `program`, without the exporter's per-node stack traces (absolute source paths)."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    proto = torch.onnx.export(program, (example,), dynamo=True, dynamic_shapes={"x": {0: batch}}, verbose=False).model_proto
    graphs = [proto.graph, *(function for function in proto.functions)]
    for graph in graphs:
        for node in graph.node:
            kept = [prop for prop in node.metadata_props if prop.key != STACK_TRACE_KEY]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
    return proto


def torch_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + batch_size])).numpy() for i in range(0, len(x), batch_size)])


def logit_agreement(reference: np.ndarray, deployed: np.ndarray) -> tuple[float, float, float]:
    """Max |logit difference|, its limit (MAX_LOGIT_DIFF + MAX_LOGIT_RELATIVE x max |reference logit|) and the share
    of equal top-1 labels, for logits (N, K) of PyTorch (reference) and ONNX Runtime (deployed)."""
    diff = float(np.abs(reference - deployed).max())
    limit = MAX_LOGIT_DIFF + MAX_LOGIT_RELATIVE * float(np.abs(reference).max())
    return diff, limit, float((reference.argmax(1) == deployed.argmax(1)).mean())


def check_export(model: nn.Module, proto: onnx.ModelProto, test: Split) -> ExportCheck:
    """Compare ONNX Runtime (CPU) with PyTorch on `test`; raise EvaluatorError when they disagree."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise EvaluatorError(f"exported ONNX model fails the checker: {str(error).splitlines()[0]}") from None
    ort = import_onnxruntime()
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    reference = torch_logits(model, test.x)
    deployed = np.concatenate([session.run(None, {input_name: test.x[i:i + 1000]})[0] for i in range(0, len(test), 1000)])
    diff, limit, agreement = logit_agreement(reference, deployed)
    if diff > limit or agreement < 1.0:
        raise EvaluatorError(f"ONNX export does not match PyTorch: max |logit diff| {diff:.2e} (limit {limit:.1e}), "
                             f"top-1 agreement {agreement:.4f} on {len(test)} test samples")
    return ExportCheck(len(test), diff, limit, agreement, float((reference.argmax(1) == test.y).mean()),
                       float((deployed.argmax(1) == test.y).mean()))


def save_artifacts(model: nn.Module, out_stem: Path, metadata: dict[str, Any], test: Split,
                   card_extra: dict[str, Any] | None = None) -> Artifacts:
    """Export, verify, then write NAME.pt2, NAME.onnx and NAME.json; `metadata` follows evaluator.metadata."""
    model.eval()
    example = torch.from_numpy(test.x[:2].copy())
    program = export_program(model, example)
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={PT2_METADATA_FILE: json.dumps(metadata, sort_keys=True)})
    pt2_bytes = buffer.getvalue()
    proto = to_onnx(program, example)
    paths = Artifacts(stem_file(out_stem, ".pt2"), stem_file(out_stem, ".onnx"), stem_file(out_stem, ".json"))
    full_metadata = {**metadata, "source": {"file": paths.pt2.name, "sha256": hashlib.sha256(pt2_bytes).hexdigest()}}
    write_metadata(proto, full_metadata)
    check = check_export(model, proto, test)  # before anything is written: a failed export leaves old files alone
    write_bytes_atomic(paths.pt2, pt2_bytes)
    write_bytes_atomic(paths.onnx, proto.SerializeToString())
    card = {
        "name": out_stem.name,
        "files": {path.suffix[1:]: {"file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size,
                                    "gzip_bytes": len(gzip.compress(path.read_bytes(), 9))}
                  for path in (paths.pt2, paths.onnx)},
        "metadata": full_metadata,
        "export_check": check.__dict__,
        **(card_extra or {}),
    }
    write_text_atomic(paths.card, json.dumps(card, indent=2, sort_keys=True) + "\n")
    return paths


def read_pt2_metadata(path: Path) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
    """Load a .pt2 written by save_artifacts with its metadata (checked first: evaluator.source.load_program)."""
    program, extra = load_program(path)
    if PT2_METADATA_FILE not in extra:
        raise EvaluatorError(f"{path} carries no evaluator metadata: it was not written by the evaluator's exporters")
    return program, parse_metadata(extra, path)


def parse_metadata(extra: dict[str, str], path: Path) -> dict[str, Any]:
    metadata = json.loads(extra[PT2_METADATA_FILE])  # load_program checked it is a JSON object of the right types
    if not isinstance(metadata.get("architecture"), dict) or not isinstance(metadata.get("dataset"), str):
        raise EvaluatorError(f"{path}: its evaluator metadata lacks the architecture or the dataset")
    return metadata


def load_trainable(path: Path) -> tuple[nn.Module, ArchSpec, dict[str, Any]]:
    """Rebuild an editable nn.Module (for fine-tuning and pruning) from a .pt2 and its architecture record.

    A .pt2 without evaluator metadata (a user's own torch.export program) is rebuilt from its graph
    (exporters.rebuild) and described by an ArchSpec named EXPORTED, with empty metadata; so are its children.
    """
    program, extra = load_program(path)
    if PT2_METADATA_FILE not in extra:
        channels, size, width, classes = input_shape(program, path)
        if size != width:
            raise EvaluatorError(f"{path} takes {size}x{width} px inputs: only square images are supported")
        model = rebuild_program(program, path)
        identity = (0.0,) * channels, (1.0,) * channels  # the module is used as is: no normalisation is added
        return model, ArchSpec(EXPORTED, channels, size, classes, 1.0, *identity), {}
    metadata = parse_metadata(extra, path)
    try:
        spec = ArchSpec.from_dict(metadata["architecture"])
        if spec.name == EXPORTED:
            return rebuild_program(program, path), spec, metadata
        state = {key: value.detach().clone() for key, value in program.state_dict.items()}
        model = reshape_to_state(build_model(spec), state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:  # metadata that does not describe these weights
        raise EvaluatorError(f"{path}: its architecture record does not rebuild the model ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [key for key in missing if not key.endswith("num_batches_tracked")]:
        raise EvaluatorError(f"{path}: weights do not fit architecture {spec.name} (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval()
    return model, spec, metadata
