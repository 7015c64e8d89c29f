"""The size / speed / robustness table in the terminal (rich)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from evaluator.assessment import Assessment


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


def render_table(assessment: Assessment, console: Console) -> None:
    """One row per model; one column per (attack, epsilon)."""
    columns: list[tuple[str, float]] = []
    for model in assessment.models:
        for result in model.attacks:
            if (result.name, result.epsilon) not in columns:
                columns.append((result.name, result.epsilon))
    table = Table(title="size / speed / robustness", header_style="bold")
    for header in ("model", "pruning", "size", "gzip", "params", "non-zero", "MACs", "provider", "p50 ms b1", "p99 ms b1",
                   "samples/s", "clean acc"):
        table.add_column(header, justify="left" if header in ("model", "pruning", "provider") else "right")
    for name, epsilon in columns:
        table.add_column(f"{name}\neps={epsilon:.4g}", justify="right")
    worst_columns: list[tuple[str, float]] = []
    for model in assessment.models:
        for worst in model.worst_case:
            if len(worst.attacks) > 1 and (worst.norm, worst.epsilon) not in worst_columns:
                worst_columns.append((worst.norm, worst.epsilon))
    for norm, epsilon in worst_columns:
        table.add_column(f"worst {norm}\neps={epsilon:.4g}", justify="right", style="bold")
    median_norms = sorted({norm for model in assessment.models for norm in model.median_distances()})
    for norm in median_norms:
        table.add_column(f"median\n{norm} dist", justify="right")
    for model in assessment.models:
        pruning = model.metadata.get("pruning") if model.metadata else None
        pruning_text = f"{pruning['method']} CR {pruning['achieved_rate']:.2f}" if pruning else "-"
        by_column = {(r.name, r.epsilon): r for r in model.attacks}
        cells = []
        for key in columns:
            result = by_column.get(key)
            if result is None:
                cells.append("-")
            elif result.queries is not None:
                cells.append(f"{result.robust_accuracy:.3f} ({result.queries:.0f} q)")
            else:
                cells.append(f"{result.robust_accuracy:.3f}")
        worst_by_column = {(w.norm, w.epsilon): w for w in model.worst_case}
        cells += [f"{worst_by_column[key].robust_accuracy:.3f}" if key in worst_by_column else "-" for key in worst_columns]
        medians = model.median_distances()
        cells += [format_distance(medians.get(norm), norm) for norm in median_norms]
        latency, throughput = model.latency, model.throughput
        table.add_row(
            Path(model.path).name, pruning_text, human_bytes(model.profile.size_bytes), human_bytes(model.profile.gzip_bytes),
            human_count(model.profile.params),
            human_count(model.profile.nonzero_params), human_count(model.profile.macs), model.runtime.used.replace("ExecutionProvider", ""),
            f"{latency.p50_ms:.3f}" if latency else "-", f"{latency.p99_ms:.3f}" if latency else "-",
            f"{throughput.throughput_per_s:,.0f} @{throughput.batch_size}" if throughput else "-",
            f"{model.clean_accuracy:.4f}", *cells,
        )
    console.print(table)
    samples = {r.samples for m in assessment.models for r in m.attacks}
    if samples:
        cascade = ("cascade: each attack only attacks what the ones left of it left robust, so its column is the accuracy after it"
                   if assessment.config.cascade else "every attack attacks every sample")
        console.print(f"robust accuracy on {', '.join(map(str, sorted(samples)))} test samples, every adversarial re-checked "
                      "on the deployed graph; (q) = mean queries per attacked sample; worst = robust against every attack run; "
                      f"median dist = median smallest adversarial distance found (minimal-norm attacks); {cascade}", style="dim")
    for model in assessment.models:
        for result in model.attacks:
            if result.out_of_budget:
                console.print(f"[red]warning[/red] {Path(model.path).name}: {result.name} returned {result.out_of_budget} "
                              "candidates outside [0, 1] or its budget (projected before the re-check): an attack bug")
    for model in assessment.models:
        for note in model.notes:
            console.print(f"[yellow]note[/yellow] {Path(model.path).name}: {note}")
