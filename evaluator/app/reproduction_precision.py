"""The reproduction page's deployment-precision table: a zoo parent in fp32, int8 and fp16, from a sweep of that
parent alone (`evaluator sweep --rates 1 --precisions fp32,int8,fp16`) or a study sweep that quantized it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.files import write_bytes_atomic
from evaluator.results import TableRow
from evaluator.scenario import middle_budget
from evaluator.table import budget_columns, number, percent


@dataclass(frozen=True)
class PrecisionRows:
    """The unpruned parent in fp32 and reduced precisions, measured in one sweep (its table file)."""

    table: Path
    rows: list[TableRow]
    config: dict[str, Any]


def precision_lines(name: str, precision: PrecisionRows, study_parent: TableRow | None, data_folder: Path,
                    page: Path) -> list[str]:
    """The parent `name` in every precision measured: clean and robust accuracy, size, speed against fp32; the
    precision sweep's table copied to data_folder/precision.json. study_parent: the study sweep's parent row."""
    rows, config = precision.rows, precision.config
    float_row = next((row for row in rows if row.precision == "fp32"), None)
    keys = [key for key in (middle_budget(budget_columns(rows), norm) for norm in ("L0", "L2", "Linf")) if key]
    lines = ["### The parent in deployment precision", "",
             f"`evaluator quantize` of the parent (int8: static QDQ, calibrated on {config.get('calibration_samples', '?')} "
             f"training images, {config.get('calibration_method', '?')}), assessed like the sweep's variants with the same "
             f"attacks on {config.get('samples', '?')} test images; white-box gradients from the float source (fp16), every "
             "adversarial example re-checked on the reduced-precision graph (int8: gradients of the int8 graph converted to torch, "
             "rounding straight-through); throughput relative to the fp32 row, timed in "
             "the same sweep.", "",
             *([] if float_row is None or study_parent is None or float_row.sha256 == study_parent.sha256
               else ["This table's fp32 parent is not the file of the sweep above (another training run of the same "
                     f"settings: sha256 {float_row.sha256[:12]}...); its rows compare with each other.", ""]),
             "| precision | clean % | drop vs fp32 pts | size B | smaller | throughput vs fp32 | "
             + " | ".join(f"robust {key} %" for key in keys) + " | fallback kernels | failed checks |",
             "|---|---:|---:|---:|---:|---:|" + "---:|" * len(keys) + "---:|---|"]
    for row in rows:
        drop = None if float_row is None else float_row.clean_accuracy - row.clean_accuracy
        smaller = "-" if float_row is None else f"{float_row.size_bytes / row.size_bytes:.2f}x"
        speed = row.speedup_vs_float  # timed right after the parent in its assessment; the rows' own figures when
        if float_row is not None and float_row.throughput_per_s and row.throughput_per_s:  # (re)timed side by side
            speed = row.throughput_per_s / float_row.throughput_per_s
        cells = [row.precision, percent(row.clean_accuracy), "-" if drop is None else f"{100 * drop + 0.0:.1f}".replace("-0.0", "0.0"),
                 f"{row.size_bytes:,}", smaller, "-" if speed is None else f"{speed:.2f}x",
                 *(percent(row.robust_accuracy.get(key)) for key in keys), number(row.fallback_kernels, "d"),
                 ", ".join(row.checks_failed) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    target = data_folder / "precision.json"
    write_bytes_atomic(target, precision.table.read_bytes())
    lines += ["", f"Data: [{name}/precision.json]({target.relative_to(page.parent).as_posix()}).", ""]
    return lines
