"""Where each operator really runs: one profiled ONNX Runtime session over the graph that runs, read kernel by kernel
(provider, input types, time), with the fallbacks flagged.

Flagged (`fallback`, the reason):
- float32 compute in a reduced-precision graph: in an int8 or int8-dynamic graph a compute kernel
  (evaluator.precision.FLOAT_COMPUTE_OPS) fed float32, where a QDQ pair around it was not fused into an integer kernel;
  in an fp16 graph one fed float32, where the provider has no float16 kernel and ORT inserted casts around it;
- a cast ONNX Runtime inserted around a kernel the provider has no float16 version of
  (InsertedPrecisionFreeCast_*);
- on a session whose first provider is not the CPU, a kernel on another provider, except shape bookkeeping ORT keeps
  on the CPU on purpose.

ORT's profile holds one "Node" event per kernel and run, named "<node>_kernel_time", with args op_name, provider and
input_type_shape ([{type: shape}, ...]) and dur in microseconds; the rest ("Session" events, older versions' fences)
is ignored. A GPU provider's durations are host-side as the profiler records them, so its time shares are indicative.
"""

from __future__ import annotations

import json
import re
from collections import Counter
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from evaluator.errors import EvaluatorError
from evaluator.precision import FLOAT_COMPUTE_OPS, FP16, INT8, INT8_DYNAMIC, check_precision_name
from evaluator.results.placement import FLOAT32, KernelPlacement, Placement
from evaluator.runtime import CPU_EP, first_line, import_onnxruntime

KERNEL_SUFFIX = "_kernel_time"
INSERTED_CAST_PREFIX = "InsertedPrecisionFreeCast_"  # ORT's name for the casts around a kernel it runs in float32
# ONNX Runtime places small shape computations on the CPU even in a GPU session (their outputs steer allocation and
# are read on the host; copying them out of the GPU would cost more than computing them): not fallbacks.
CPU_SHAPE_OPS = frozenset({"Shape", "Size", "Reshape", "Squeeze", "Unsqueeze", "Constant", "ConstantOfShape", "Range"})
# Element types of shape tensors: a kernel fed only these (Gather, Concat, Slice, ... on shapes) is shape arithmetic.
SHAPE_TYPES = frozenset({"int64", "int32"})


def fallback_reason(node: str, op: str, provider: str, input_types: tuple[str, ...], session_provider: str,
                    precision: str) -> str | None:
    """Why this kernel is flagged (module docstring; several reasons joined by "; "), None when it runs where and
    how it should."""
    reasons = []
    if session_provider != CPU_EP and provider != session_provider:
        if op not in CPU_SHAPE_OPS and not all(kind in SHAPE_TYPES for kind in input_types):
            reasons.append(f"on {provider}, not {session_provider}")
    if precision in (INT8, INT8_DYNAMIC, FP16) and op in FLOAT_COMPUTE_OPS and input_types[:1] == (FLOAT32,):
        # The first input is the data computed on: ORT lists no pre-packed weights, and integer kernels take float32
        # scales further on.
        reasons.append(f"float32 compute in an {precision} graph")
    if op == "Cast" and node.startswith(INSERTED_CAST_PREFIX):
        reasons.append(f"cast inserted by ONNX Runtime: no float16 kernel on {provider}")
    return "; ".join(reasons) or None


GENERATED_SUFFIX = re.compile(r"_token_\d+")  # ORT's suffix on the names of nodes its graph optimiser makes


def parse_profile(events: list[dict[str, Any]], provider: str, precision: str, batch_size: int, runs: int,
                  warmup: int = 0) -> Placement:
    """The kernels of a profile (the JSON list session.end_profiling() writes) of `warmup` + `runs` runs: the first
    `warmup` runs left out (they are found from the profile's "model_run" events), each kernel's duration summed over
    the other runs and divided by `runs`; provider: the session's first provider."""
    check_precision_name(precision)
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0, got {runs} and {warmup}")
    start = 0.0
    if warmup:
        run_ends = sorted(event["ts"] + event["dur"] for event in events
                          if event.get("cat") == "Session" and event.get("name") == "model_run")
        if len(run_ends) < warmup + runs:
            raise ValueError(f"the profile holds {len(run_ends)} runs, expected {warmup} + {runs}")
        start = run_ends[warmup - 1]
    kernels: dict[str, dict[str, Any]] = {}  # node -> first event's args and summed duration, in order of first run
    for event in sorted(events, key=lambda event: event.get("ts", 0)):
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX) or event.get("ts", 0) < start:
            continue
        entry = kernels.setdefault(name.removesuffix(KERNEL_SUFFIX), {"args": event.get("args", {}), "us": 0.0})
        entry["us"] += float(event.get("dur", 0))
    placed, named = [], Counter[str]()
    for node, entry in kernels.items():
        args = entry["args"]
        op, kernel_provider = str(args.get("op_name", "")), str(args.get("provider", ""))
        input_types = tuple(kind for value in args.get("input_type_shape", []) for kind in value)
        stable = GENERATED_SUFFIX.sub("", node)  # ORT numbers the nodes its optimiser makes in no fixed order
        named[stable] += 1
        placed.append(KernelPlacement(stable if named[stable] == 1 else f"{stable}#{named[stable]}", op, kernel_provider,
                                      input_types, entry["us"] / runs,
                                      fallback_reason(node, op, kernel_provider, input_types, provider, precision)))
    return Placement(provider, precision, batch_size, tuple(placed))


def node_placement(graph: onnx.ModelProto, provider: str, precision: str, x: np.ndarray, threads: int, runs: int = 3,
                   provider_options: dict[str, Any] | None = None) -> Placement:
    """Profile `graph` as the evaluator's sessions run it (all graph optimisations, `threads` intra-op threads,
    `provider` first, the CPU behind a GPU provider) on x fed to its one input: one warm-up run (it allocates),
    then `runs` runs. The profile is written to a temporary folder and removed."""
    ort = import_onnxruntime()
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    providers: list[Any] = [(provider, provider_options or {})] + ([CPU_EP] if provider != CPU_EP else [])
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "placement")
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.use_deterministic_compute = True  # as the evaluator's sessions
        try:
            session = ort.InferenceSession(graph.SerializeToString(), options, providers=providers)
            inputs = session.get_inputs()
            if len(inputs) != 1:
                raise EvaluatorError(f"the graph has {len(inputs)} inputs: node placement feeds exactly one")
            for _ in range(runs + 1):
                session.run(None, {inputs[0].name: x})
            profile = Path(session.end_profiling())
        except EvaluatorError:
            raise
        except Exception as error:  # ORT raises its own types (Fail, InvalidArgument, ...)
            raise EvaluatorError(f"ONNX Runtime could not profile the graph on {provider}: {first_line(error)}") from None
        events = json.loads(profile.read_text())
        profile.unlink()
        used = session.get_providers()[0]
    try:
        return parse_profile(events, used, precision, int(x.shape[0]), runs, warmup=1)
    except ValueError as error:  # a profile without the runs it should hold
        raise EvaluatorError(f"ONNX Runtime's profile could not be read: {error}") from None
