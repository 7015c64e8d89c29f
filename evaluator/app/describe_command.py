"""`evaluator describe`: record how a foreign ONNX model is fed and what it classifies in a copy's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.app.console import console
from evaluator.app.options import InputRange, Layout, Scores, check_output_path, input_overrides
from evaluator.errors import EvaluatorError


def describe(
    model: Annotated[Path, typer.Argument(help="The ONNX model (yours: exported without the evaluator's metadata).")],
    out: Annotated[Path, typer.Option(help="Where to write the described copy (.onnx).")],
    dataset: Annotated[str, typer.Option(help="What it classifies: fashion-mnist, mnist, cifar10, an .npz or an image folder.")],
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the dataset's files.")] = None,
    layout: Annotated[Optional[Layout], typer.Option(help="The graph's image layout. \\[default: from the input's shape]")] = None,
    input_range: Annotated[Optional[InputRange], typer.Option(help="The graph's pixel range. \\[default: 0-1]")] = None,
    mean: Annotated[Optional[str], typer.Option(help="Per-channel mean the graph expects subtracted (its pixel units).")] = None,
    std: Annotated[Optional[str], typer.Option(help="Per-channel std the graph expects divided by.")] = None,
    output: Annotated[Optional[str], typer.Option(help="The graph output to read. \\[default: the first]")] = None,
    scores: Annotated[Optional[Scores], typer.Option(metavar="<kind>", help="What the output holds: logits or probabilities. "
                                                   "\\[default: probabilities after a final Softmax]")] = None,
) -> None:
    """Check how a model takes images on its dataset and write a copy whose metadata records it: `assess` then needs no
    flags. The graph is not changed."""
    from evaluator.describe import describe_model

    if out.suffix != ".onnx":
        raise EvaluatorError(f"--out {out} must end in .onnx")
    check_output_path(out, "--out")
    result = describe_model(model, out, dataset, data_dir, input_overrides(layout, input_range, mean, std, output, scores))
    recorded = result.metadata["input"]
    console.print(f"clean accuracy {result.clean_accuracy:.4f} on {result.test_samples:,} test images of "
                  f"{result.metadata['dataset']} ({recorded['layout']}, pixels 0-{recorded['range'][1]:g}, "
                  f"{recorded['scores']} from output {recorded['output']!r})", markup=False, highlight=False)
    if not result.chance.passed:
        console.print(f"warning: {result.chance.detail}", markup=False, highlight=False, style="yellow")
    console.print(f"wrote {result.path}: `evaluator assess {result.path}` needs no other flag", markup=False, highlight=False)
