"""How long library work reports progress without knowing who shows it: the applications adapt it to a rich bar
(evaluator.app.console), a log, or nothing. No rich types below the applications."""

from __future__ import annotations

from typing import Callable, Protocol

Step = Callable[[str], None]
"""Starts the next step of a job with its description (assess: one call per model measurement or attack)."""


class Task(Protocol):
    """One counted piece of work (e.g. training batches)."""

    def advance(self, steps: int = 1) -> None: ...

    def describe(self, description: str) -> None: ...

    def finish(self) -> None: ...


class Progress(Protocol):
    """Starts counted tasks; `total` is in the task's own units (batches, runs)."""

    def task(self, description: str, total: int) -> Task: ...


class SilentTask:
    def advance(self, steps: int = 1) -> None:
        pass

    def describe(self, description: str) -> None:
        pass

    def finish(self) -> None:
        pass


class SilentProgress:
    """Progress that shows nothing (the Python API's default)."""

    def task(self, description: str, total: int) -> Task:
        return SilentTask()


def silent_step(description: str) -> None:
    """A Step that shows nothing."""
