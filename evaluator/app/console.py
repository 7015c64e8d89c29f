"""The commands' two consoles (results on stdout; errors and progress bars on stderr), their progress bars and the
rich adapter of the library's progress protocol (evaluator.progress)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

console = Console(width=None if sys.stdout.isatty() else 260)  # pipes and CI logs get the whole table
errors = Console(stderr=True)


def progress_bar() -> Progress:
    """A transient bar on stderr (spinner, description, bar, done/total, time)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=errors, transient=True)


class RichTask:
    """One task of a rich bar as an evaluator.progress.Task."""

    def __init__(self, bar: Progress, task: TaskID, total: int) -> None:
        self.bar, self.id, self.total = bar, task, total

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self.id, steps)

    def describe(self, description: str) -> None:
        self.bar.update(self.id, description=description)

    def finish(self) -> None:
        self.bar.update(self.id, completed=self.total)


class RichProgress:
    """A rich bar as the library's evaluator.progress.Progress: each task is a line of the bar."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def task(self, description: str, total: int) -> RichTask:
        return RichTask(self.bar, self.bar.add_task(description, total=total), total)


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
