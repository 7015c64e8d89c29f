"""The size / speed / robustness table in the terminal (rich)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

from evaluator.results import Assessment, ModelAssessment


def human_bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def human_count(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


def format_distance(value: float | None, norm: str) -> str:
    if value is None:
        return "> half not found"
    return f"{value:.0f} px" if norm == "L0" else f"{value:.3g}"


SCALAR_HEADERS = ("model", "pruning", "size", "gzip", "params", "non-zero", "MACs", "provider", "p50 ms b1", "p99 ms b1",
                  "samples/s", "clean acc")


def scalar_cells(model: ModelAssessment) -> list[str]:
    """The size / speed / clean-accuracy cells of one model, in SCALAR_HEADERS order."""
    pruning = model.metadata.get("pruning") if model.metadata else None
    latency, throughput = model.latency, model.throughput
    return [
        Path(model.path).name, f"{pruning['method']} CR {pruning['achieved_rate']:.2f}" if pruning else "-",
        human_bytes(model.profile.size_bytes), human_bytes(model.profile.gzip_bytes), human_count(model.profile.params),
        human_count(model.profile.nonzero_params), human_count(model.profile.macs), model.runtime.used.replace("ExecutionProvider", ""),
        f"{latency.p50_ms:.3f}" if latency else "-", f"{latency.p99_ms:.3f}" if latency else "-",
        f"{throughput.throughput_per_s:,.0f} @{throughput.batch_size}" if throughput else "-", f"{model.clean_accuracy:.4f}",
    ]


def robustness_measures(assessment: Assessment) -> list[tuple[str, Callable[[ModelAssessment], str]]]:
    """(header, cell of a model) for every robustness figure: each attack at each epsilon (in the order they ran), the
    worst case per norm and epsilon where more than one attack ran there, the median minimal distance per norm."""
    measures: list[tuple[str, Callable[[ModelAssessment], str]]] = []
    if any(model.attacks for model in assessment.models):
        measures.append(("attacked\nclean acc", attacked_clean_cell))
    attacks: list[tuple[str, float]] = []
    for model in assessment.models:
        attacks += [key for key in ((r.name, r.epsilon) for r in model.attacks) if key not in attacks]
    for name, epsilon in attacks:
        measures.append((f"{name}\neps={epsilon:.4g}", functools.partial(attack_cell, key=(name, epsilon))))
    worst: list[tuple[str, float]] = []
    for model in assessment.models:
        worst += [key for key in ((w.norm, w.epsilon) for w in model.worst_case if len(w.attacks) > 1) if key not in worst]
    for norm, epsilon in worst:
        measures.append((f"worst {norm}\neps={epsilon:.4g}", functools.partial(worst_cell, key=(norm, epsilon))))
    for norm in sorted({norm for model in assessment.models for norm in model.median_distances()}):
        measures.append((f"median\n{norm} dist", functools.partial(median_cell, norm=norm)))
    return measures


def attacked_clean_cell(model: ModelAssessment) -> str:
    """The clean accuracy of the attacked samples: what the model's robust accuracies are out of."""
    return f"{model.attacked.clean_accuracy:.3f} of {len(model.attacked.indices):,}" if model.attacked else "-"


def attack_cell(model: ModelAssessment, key: tuple[str, float]) -> str:
    result = next((r for r in model.attacks if (r.name, r.epsilon) == key), None)
    if result is None:
        return "-"
    return f"{result.robust_accuracy:.3f} ({result.queries:.0f} q)" if result.queries is not None else f"{result.robust_accuracy:.3f}"


def worst_cell(model: ModelAssessment, key: tuple[str, float]) -> str:
    worst = next((w for w in model.worst_case if (w.norm, w.epsilon) == key), None)
    if worst is None:
        return "-"
    low, high = worst.to_dict()["robust_accuracy_ci"]
    return f"{worst.robust_accuracy:.3f} [{low:.3f}-{high:.3f}]"


def median_cell(model: ModelAssessment, norm: str) -> str:
    return format_distance(model.median_distances().get(norm), norm)


def one_table(assessment: Assessment, measures: list[tuple[str, Callable[[ModelAssessment], str]]]) -> Table:
    """One row per model: its size, speed and clean accuracy, then one column per robustness figure."""
    table = Table(title="size / speed / robustness", header_style="bold")
    for header in SCALAR_HEADERS:
        table.add_column(header, justify="left" if header in ("model", "pruning", "provider") else "right")
    for header, _ in measures:
        table.add_column(header, justify="right", style="bold" if header.startswith("worst") else None)
    for model in assessment.models:
        table.add_row(*scalar_cells(model), *(cell(model) for _, cell in measures))
    return table


def split_tables(assessment: Assessment, measures: list[tuple[str, Callable[[ModelAssessment], str]]]) -> list[Table]:
    """For runs too wide for one table: size / speed with one row per model, then robustness with one row per figure
    and one column per model."""
    speed = Table(title="size / speed", header_style="bold")
    for header in SCALAR_HEADERS:
        speed.add_column(header, justify="left" if header in ("model", "pruning", "provider") else "right")
    for model in assessment.models:
        speed.add_row(*scalar_cells(model))
    robustness = Table(title="robustness", header_style="bold")
    robustness.add_column("attack / measure")
    for model in assessment.models:
        robustness.add_column(Path(model.path).name, justify="right")
    for header, cell in measures:
        robustness.add_row(header.replace("\n", " "), *(cell(model) for model in assessment.models),
                           style="bold" if header.startswith("worst") else None)
    return [speed, robustness]


def gradients_line(assessment: Assessment) -> str | None:
    """Where the gradient attacks' gradients came from, under the table: 'gradients from: source, surrogate' when every
    model shares them, else per model; None when no gradient attack ran."""
    sources = {Path(model.path).name: ", ".join(model.gradient_sources()) or "-" for model in assessment.models}
    if all(value == "-" for value in sources.values()):
        return None
    if len(set(sources.values())) == 1:
        return f"gradients from: {next(iter(sources.values()))}"
    return "gradients from: " + "; ".join(f"{name} {value}" for name, value in sources.items())


def precision_lines(assessment: Assessment) -> list[str]:
    """One line per int8 / fp16 model: against its float32 parent, and where its kernels ran. E.g. 'precision
    m_int8.onnx: int8 (static, QDQ ...), 0.20 points below its float32 parent (0.9062), 0.46x its throughput at batch
    256; 12 kernels on CPU; no fallbacks'."""
    lines = []
    for model in assessment.models:
        precision = model.precision
        if precision is None or not precision.is_reduced:
            continue
        parts = [f"{precision.name}" + (f" ({precision.method})" if precision.method else "")]
        if model.float_accuracy_drop is not None:
            parts.append(f"{100 * model.float_accuracy_drop:.2f} points below its float32 parent "
                         f"({precision.float_parent_accuracy:.4f})")
        if precision.speedup is not None and model.throughput is not None:
            parts.append(f"{precision.speedup:.2f}x its throughput at batch {model.throughput.batch_size}")
        placement = f"; {model.placement.summary()}" if model.placement else ""
        lines.append(f"precision {Path(model.path).name}: {', '.join(parts)}{placement}")
    return lines


def render_table(assessment: Assessment, console: Console) -> None:
    """One row per model, one column per (attack, epsilon); where that is wider than the console, a size / speed
    table and a robustness table with one row per (attack, epsilon) instead."""
    measures = robustness_measures(assessment)
    table = one_table(assessment, measures)
    if console.measure(table, options=console.options.update_width(100_000)).maximum > console.width:
        for part in split_tables(assessment, measures):
            console.print(part)
    else:
        console.print(table)
    samples = {r.samples for m in assessment.models for r in m.attacks}
    if samples:
        cascade = ("cascade: each attack only attacks what the ones left of it left robust, so its figure is the accuracy after it"
                   if assessment.config.cascade else "every attack attacks every sample")
        console.print(f"robust accuracy on {', '.join(map(str, sorted(samples)))} test samples, every adversarial re-checked "
                      "on the deployed graph, out of the attacked samples' clean accuracy (attacked clean acc); (q) = mean queries per "
                      "attacked sample; worst = robust against every attack run, [95 % Wilson interval]; "
                      f"median dist = median smallest adversarial distance found (minimal-norm attacks); {cascade}", style="dim")
    gradients = gradients_line(assessment)
    if gradients:
        console.print(gradients, style="dim")
    for line in precision_lines(assessment):
        console.print(line, style="dim")
    for model in assessment.models:
        for result in model.attacks:
            if result.out_of_budget:
                console.print(f"[red]warning[/red] {Path(model.path).name}: {result.name} returned {result.out_of_budget} "
                              "candidates outside [0, 1] or its budget (projected before the re-check): an attack bug")
    for model in assessment.models:
        for note in model.notes:
            console.print(f"[yellow]note[/yellow] {Path(model.path).name}: {note}")
