"""The commands' two consoles (results on stdout; errors and progress bars on stderr), their progress bars and the
rich adapter of the library's progress protocol (evaluator.progress)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.text import Text

console = Console(width=None if sys.stdout.isatty() else 260)  # pipes and CI logs get the whole table
errors = Console(stderr=True)


def progress_bar() -> Progress:
    """A transient bar on stderr (spinner, description, bar, done/total, time so far, time left at the rate so far).
    When stderr is not a terminal (a CI log, a pipe), rich draws nothing: task_progress then prints lines."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=errors, transient=True)


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def log_steps(total: int, clock: Callable[[], float] = time.monotonic) -> Callable[[str], None]:
    """A step function printing one line per step, with the time so far and, from the mean time of the steps done,
    the time left."""
    start, done = clock(), {"steps": 0}

    def step(message: str) -> None:
        elapsed = clock() - start
        count = done["steps"]
        left = f", about {duration(elapsed / count * (total - count))} left" if count else ""
        errors.print(Text(f"[{count + 1}/{total}] {message} ({duration(elapsed)} so far{left})"), highlight=False, soft_wrap=True)
        done["steps"] = count + 1

    return step


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


class LogTask:
    """A counted task printed as lines: at its start, at every tenth of it (with time so far and left), at its end."""

    def __init__(self, description: str, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.description, self.total, self.clock = description, max(total, 1), clock
        self.start, self.done, self.printed = clock(), 0, 0
        errors.print(Text(f"{description}: started ({total:,} steps)"), highlight=False, soft_wrap=True)

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        tenth = min(10, self.done * 10 // self.total)
        if tenth > self.printed and self.done < self.total:
            self.printed = tenth
            elapsed = self.clock() - self.start
            left = elapsed / self.done * (self.total - self.done)
            errors.print(Text(f"{self.description}: {self.done:,}/{self.total:,} ({duration(elapsed)} so far, about "
                              f"{duration(left)} left)"), highlight=False, soft_wrap=True)

    def describe(self, description: str) -> None:
        self.description = description

    def finish(self) -> None:
        errors.print(Text(f"{self.description}: done in {duration(self.clock() - self.start)}"), highlight=False,
                     soft_wrap=True)


class LogProgress:
    """The library's evaluator.progress.Progress as lines on stderr, for logs and pipes (no terminal)."""

    def task(self, description: str, total: int) -> LogTask:
        return LogTask(description, total)


@contextmanager
def console_progress() -> Iterator[RichProgress | LogProgress]:
    """A rich bar on a terminal, else lines: the progress of train, prune and sweep."""
    if not errors.is_terminal:
        yield LogProgress()
        return
    with progress_bar() as bar:
        yield RichProgress(bar)


def say_line(message: str) -> None:
    """One line on stderr, above a live bar (printed literally)."""
    errors.print(Text(message), highlight=False, soft_wrap=True)


@contextmanager
def task_progress(total: int) -> Iterator[Callable[[str], None]]:
    """A bar of `total` steps and a function that starts the next one with its description; without a terminal, one
    line per step on stderr: '[3/12] model.onnx: apgd-ce-linf eps=0.03137 (1 min 02 s so far, about 3 min 06 s left)'."""
    if not errors.is_terminal:
        yield log_steps(total)
        return
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
