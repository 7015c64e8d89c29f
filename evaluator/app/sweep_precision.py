"""A sweep's precision dimension: every float32 variant also quantized (`evaluator quantize`), cached by a hash of
the variant's file and the quantization settings, so that a sweep killed while quantizing resumes like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from evaluator.app.sweep_config import SweepConfig
from evaluator.app.sweep_engine import Engine, SerialEngine, bound
from evaluator.errors import EvaluatorError
from evaluator.files import digest, read_json_object, sha256_of
from evaluator.progress import Progress

Say = Callable[[str], None]


def in_precisions(config: SweepConfig, variants: list[Path], progress: Progress, say: Say, failures: list[str],
                  engine: Engine = SerialEngine()) -> list[Path]:
    """The .onnx of every variant in every precision of config.precisions, each variant's in that order (fp32: the
    variant itself); a quantization that fails is left out and its reason added to `failures`. The quantizations
    run on `engine` (in parallel on Ray)."""
    pairs = [(onnx, precision) for onnx in variants for precision in config.precisions]
    quantized = iter(engine.map(bound(quantize_step, config), [pair for pair in pairs if pair[1] != "fp32"], progress, say,
                                "quantizing"))
    deployed: list[Path] = []
    for onnx, precision in pairs:
        if precision == "fp32":
            deployed.append(onnx)
            continue
        made, failure = next(quantized)
        deployed += [made] if made is not None else []
        if failure:
            failures.append(failure)
            say(f"[yellow]note[/yellow] {failure}")
    return deployed


def quantize_step(config: SweepConfig, pair: tuple[Path, str], progress: Progress, say: Say) -> tuple[Path | None, str | None]:
    """quantize_variant of one (variant, precision) as an engine step (sweep_engine)."""
    return quantize_variant(config, pair[0], pair[1], progress, say)


QUANTIZE_CACHE_VERSION = "1"  # bump when a change of the evaluator changes quantized artifacts


def quantize_variant(config: SweepConfig, onnx: Path, precision: str, progress: Progress,
                     say: Say) -> tuple[Path | None, str | None]:
    """NAME_<precision>.onnx beside a float32 variant (evaluator quantize), cached by a hash of the variant's file and
    the quantization settings; (None, the reason) when it cannot be made."""
    from exporters.quantize import (QuantizeOptions, default_output, quantize_artifact, resolved_activations,
                                    resolved_reduce_range, tool_version)

    options = QuantizeOptions(precision, config.calibration_samples, config.calibration_method, config.seed,
                              config.dataset, config.data_dir, threads=config.threads)
    target = default_output(onnx, precision)
    settings = {"precision": precision, "dataset": config.dataset, "seed": config.seed, "tool": tool_version()}
    if precision == "int8":
        settings.update(calibration=[config.calibration_samples, config.calibration_method],
                        reduce_range=resolved_reduce_range(None), activations=resolved_activations(None))
    key = digest({"parent": sha256_of(onnx), **settings, "cache": QUANTIZE_CACHE_VERSION})
    card = read_json_object(target.with_suffix(".json"))
    entry = ((card or {}).get("files") or {}).get("onnx")
    if (card or {}).get("sweep_key") == key and isinstance(entry, dict) and target.is_file() \
            and entry.get("sha256") == sha256_of(target):
        say(f"{precision} {onnx.stem}: cached")
        return target, None
    say(f"quantizing {onnx.stem} to {precision}")
    task = progress.task(f"{onnx.stem}: {precision}", 2)
    try:
        quantize_artifact(onnx, options, target, lambda description: task.advance(), {"sweep_key": key})
    except EvaluatorError as error:
        return None, f"{precision} of {onnx.stem} failed: {error}"
    finally:
        task.finish()
    return target, None
