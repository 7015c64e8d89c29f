"""Where a sweep's independent steps run: one after another in this process, or as Ray tasks on a local Ray runtime
(`workers` > 1) or on a cluster (`ray_address`).

A step is a function of (item, progress, say) returning a result; `map` runs one step per item and gives the results
in the items' order. The schedule stays the sweep's: each pruning method's iterative steps run in order inside one
task, and what does not depend on each other (the methods, the quantizations, the assessments) runs in parallel. The
step cache and atomic writes stay the source of truth: a task writes its files into the sweep's folder as the serial
sweep does, so every node must see that folder at the same path (a local runtime does; on a cluster, a shared
filesystem), and a sweep interrupted on a cluster resumes like a local one. Ray (the `ray` extra) is imported only
when asked for.
"""

from __future__ import annotations

import functools
import socket
import time
from typing import Any, Callable, Protocol, Sequence, TypeVar

from evaluator.errors import EvaluatorError, first_line
from evaluator.progress import Progress, SilentProgress

Item = TypeVar("Item")
Result = TypeVar("Result")
Say = Callable[[str], None]
Step = Callable[[Any, Progress, Say], Any]
RAY_CONNECT_TIMEOUT_S = 5.0  # a cluster's address that does not answer in this time is an error


class Engine(Protocol):
    description: str  # for the sweep's record: 'serial' or 'ray: N CPUs on ...'
    seconds: dict[str, list[float]]  # per map label, the wall time of each step (s), in the items' order

    def map(self, step: Step, items: Sequence[Any], progress: Progress, say: Say, label: str) -> list[Any]: ...

    def close(self) -> None: ...


class SerialEngine:
    """Every step in this process, in order, with the sweep's own progress and messages."""

    description = "serial"

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def map(self, step: Step, items: Sequence[Any], progress: Progress, say: Say, label: str) -> list[Any]:
        results = []
        for item in items:
            start = time.perf_counter()
            results.append(step(item, progress, say))
            self.seconds.setdefault(label, []).append(time.perf_counter() - start)
        return results

    def close(self) -> None:
        pass


def run_task(step: Step, item: Any, threads: int | None, torch_device: str) -> tuple[Any, list[str], float]:
    """One step inside a Ray worker: with the sweep's thread count and torch device, silent progress, its messages
    collected for the driver to print; (result, messages, wall time of the step in s)."""
    from evaluator.threads import training_threads
    from evaluator.torch_device import training_device

    said: list[str] = []
    with training_threads(threads), training_device(torch_device):
        start = time.perf_counter()
        result = step(item, SilentProgress(), said.append)
        return result, said, time.perf_counter() - start


class RayEngine:
    """Steps as Ray tasks of `threads` CPUs each (torch's and ONNX Runtime's thread count in the task): the sweep's
    thread count, else on a local runtime this machine's cores shared among the `workers`, on a cluster 1. A local
    runtime gets workers x threads CPUs, so that `workers` tasks run at once. The driver shows one progress task per
    map and prints each step's messages when it ends, in the items' order."""

    def __init__(self, workers: int | None, address: str | None, threads: int | None, torch_device: str) -> None:
        from evaluator.threads import available_cores

        ray = import_ray()
        if address is not None:
            check_reachable(address)
        per_task = threads or (max(1, available_cores() // workers) if workers else 1)
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        try:
            if address is None:  # "local": a new runtime, never one that RAY_ADDRESS or `ray start` left running
                ray.init(address="local", num_cpus=(workers or 1) * per_task, **options)
            else:
                ray.init(address=address, **options)
        except Exception as error:  # ConnectionError, RuntimeError, ValueError from ray.init
            raise EvaluatorError(f"ray_address {address} cannot be joined: {first_line(error)}" if address else
                                 f"workers: a local Ray runtime did not start: {first_line(error)}",
                                 field="ray_address" if address else "workers") from None
        self._ray = ray
        self._threads, self._torch_device = per_task, torch_device
        self.seconds: dict[str, list[float]] = {}
        cpus = int(ray.cluster_resources().get("CPU", 0))
        where = f"the cluster at {address}" if address else "a local Ray runtime"
        self.description = f"ray: {cpus} CPUs on {where}"

    def map(self, step: Step, items: Sequence[Any], progress: Progress, say: Say, label: str) -> list[Any]:
        if not items:
            return []
        task = self._ray.remote(num_cpus=self._threads, max_retries=0)(run_task)
        pending = {task.remote(step, item, self._threads, self._torch_device): index for index, item in enumerate(items)}
        results: list[Any] = [None] * len(items)
        shown = progress.task(f"{label} ({len(items)} Ray tasks)", len(items))
        waiting = list(pending)
        while waiting:
            done, waiting = self._ray.wait(waiting, num_returns=1)
            try:
                results[pending[done[0]]] = self._ray.get(done[0])
            except self._ray.exceptions.RayError as error:
                for ref in waiting:  # nothing goes on writing into OUT once the driver gives up
                    self._ray.cancel(ref, force=True)
                cause = getattr(error, "cause", None)
                if isinstance(cause, EvaluatorError):  # the step's own error (bad input): as the serial sweep says it
                    raise cause from None
                raise EvaluatorError(f"a Ray task of the sweep ({label}) failed: {first_line(cause or error)}") from None
            shown.advance()
        shown.finish()
        values = []
        for value, said, seconds in results:
            for message in said:
                say(message)
            values.append(value)
            self.seconds.setdefault(label, []).append(seconds)
        return values

    def close(self) -> None:
        self._ray.shutdown()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EvaluatorError("workers: Ray is not installed: pip install 'evaluator[ray]'", field="workers") from None
    return ray


def check_reachable(address: str) -> None:
    """A cluster address (HOST:PORT or ray://HOST:PORT; 'auto' finds the local one) that is malformed or does not
    accept a connection within RAY_CONNECT_TIMEOUT_S is an EvaluatorError before Ray tries for a minute."""
    if address == "auto":
        return
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EvaluatorError(f"ray_address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}", field="ray_address")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise EvaluatorError(f"ray_address {address} is not reachable: {error.strerror or error}", field="ray_address") from None


def sweep_engine(workers: int, address: str | None, threads: int | None, torch_device: str) -> Engine:
    """Serial for one worker and no cluster; else Ray."""
    if workers <= 1 and address is None:
        return SerialEngine()
    return RayEngine(workers if address is None else None, address, threads, torch_device)


def bound(function: Callable[..., Any], *args: Any) -> Step:
    """function(*args, item, progress, say) as a step (picklable for Ray: a partial of a module-level function)."""
    return functools.partial(function, *args)
