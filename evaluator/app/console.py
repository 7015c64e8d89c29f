"""The commands' two consoles (results on stdout; errors and progress bars on stderr) and their progress bars."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console(width=None if sys.stdout.isatty() else 260)  # pipes and CI logs get the whole table
errors = Console(stderr=True)


def progress_bar() -> Progress:
    """A transient bar on stderr (spinner, description, bar, done/total, time)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=errors, transient=True)


@contextmanager
def task_progress(total: int) -> Iterator[Callable[[str], None]]:
    """A bar of `total` steps and a function that starts the next one with its description."""
    with progress_bar() as bar:
        task = bar.add_task("starting", total=total)
        first = {"step": True}

        def step(message: str) -> None:
            if not first["step"]:
                bar.advance(task)
            first["step"] = False
            bar.update(task, description=message)

        yield step
        bar.update(task, completed=total)
