"""The attack contract and registry.

An attack only crafts candidates (`run`); the bookkeeping - projection onto the budget, re-checking
every candidate on the deployed ONNX graph, counting robust samples - is done once, in
evaluator.robustness, by the evaluator's own distances.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from evaluator.errors import EvaluatorError, first_line
from evaluator.limits import MAX_ATTACK_COUNT, MAX_BATCH
from evaluator.norms import Norm
from evaluator.runtime import OnnxClassifier


class AttackKind(str, Enum):
    WHITE_BOX = "white-box"  # gradients of the PyTorch source
    SCORE = "score"  # queries the deployed graph's scores
    DECISION = "decision"  # queries the deployed graph's top-1 label
    TRANSFER = "transfer"  # crafted on a surrogate, evaluated on the deployed graph


@dataclass
class AttackTarget:
    """What an attack may use: the deployed ORT classifier and, lazily, the PyTorch source (or the deployed graph
    converted to torch) and a surrogate. The torch models compute on `torch_device` (auto, cpu, cuda, cuda:N); attacks
    hand them CPU tensors and get CPU tensors back (evaluator.torch_device.OnDevice). `device_used` names the device
    once a torch model is loaded."""

    deployed: OnnxClassifier
    source_path: Path | None = None
    surrogate_path: Path | None = None
    _source: Any = field(default=None, repr=False)
    _surrogate: Any = field(default=None, repr=False)
    torch_device: str = "cpu"
    device_used: str | None = None

    def __post_init__(self) -> None:
        if self._source is not None:  # a module given (the converted graph): placed like a loaded source
            self._source = self._placed(self._source)

    def has_gradients(self) -> bool:
        """A differentiable model stands behind the deployed one: its PyTorch source, or the graph converted to torch
        (given as _source)."""
        return self.source_path is not None or self._source is not None

    def source(self) -> Any:
        """The source as a torch module (imports torch on first use)."""
        if self._source is None:
            if self.source_path is None:
                raise EvaluatorError("source (the PyTorch .pt2) is needed by this attack: give one or use a model made by the "
                                     "exporters", field="source")
            from evaluator.source import load_source

            self._source = self._placed(load_source(self.source_path))
        return self._source

    def surrogate(self) -> Any:
        """The transfer surrogate as a torch module (by default the unpruned parent's source)."""
        if self._surrogate is None:
            if self.surrogate_path is None:
                raise EvaluatorError("surrogate (a .pt2) is needed by this attack: give one or assess a pruned model whose parent is "
                                     "beside it", field="surrogate")
            from evaluator.source import load_source

            self._surrogate = self._placed(load_source(self.surrogate_path))
        return self._surrogate

    def _placed(self, module: Any) -> Any:
        """`module` on the torch device, once one forward pass there works; else on the CPU, the reason in
        device_used (an exported program can hold constants or nodes that stay on the CPU)."""
        import torch

        from evaluator.torch_device import choose_torch_device, device_label, on_device

        device = choose_torch_device(self.torch_device)
        placed = on_device(module, device)
        if device.type != "cpu":
            try:
                with torch.no_grad():
                    placed(torch.zeros((1, *self.deployed.input_shape)))
            except Exception as error:  # torch's device-mismatch RuntimeError, or anything the program raises
                self.device_used = f"cpu ({device_label(device)} failed: {first_line(error)[:160]})"
                return module.to("cpu")  # OnDevice moved its parameters
        self.device_used = device_label(device)
        return placed


@dataclass(frozen=True)
class Work:
    """Passes over one sample an attack makes at most (no early stop): gradients (forward and backward) of the
    attacked torch model or of the surrogate, forwards of the torch model, queries of the deployed graph."""

    gradients: float = 0.0
    surrogate_gradients: float = 0.0
    forwards: float = 0.0
    queries: float = 0.0

    def __add__(self, other: Work) -> Work:
        return Work(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def __mul__(self, factor: float) -> Work:
        return Work(*(value * factor for value in dataclasses.astuple(self)))


@dataclass(frozen=True)
class AttackOutput:
    """x_adv: (N, C, H, W) float32 candidates; queries: (N,) model queries per sample, for black-box attacks."""

    x_adv: np.ndarray
    queries: np.ndarray | None = None


class Attack(ABC):
    """A fixed-budget attack. Subclasses are dataclasses whose fields are the attack's options."""

    name: ClassVar[str]
    norm: ClassVar[Norm]
    kind: ClassVar[AttackKind]
    summary: ClassVar[str]
    min_classes: ClassVar[int] = 2  # classes a model needs for the attack (a margin ranks the top logits); fewer: skipped
    # Smallest allowed value of integer options that must not be 0 (queries, samples per batch), and the float options
    # that must be above 0; every other number option must be finite and at least 0. A value outside is a user
    # error, raised when the attack is made.
    # Largest allowed values (shares such as p_init); batch_size is always at most MAX_BATCH samples, every other
    # whole-number option at most MAX_ATTACK_COUNT.
    minimums: ClassVar[dict[str, int]] = {}
    positive: ClassVar[tuple[str, ...]] = ()
    maximums: ClassVar[dict[str, float]] = {}

    def __post_init__(self) -> None:
        for option, value in self.options().items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue
            maximum = self.maximums.get(option, MAX_BATCH if option == "batch_size" else
                                        MAX_ATTACK_COUNT if isinstance(value, numbers.Integral) else None)
            if maximum is not None and value > maximum:
                shown = f"{maximum:,}" if isinstance(maximum, int) else f"{maximum:g}"
                raise EvaluatorError(f"attack {self.name!r}: {option} must be at most {shown}, got {value}")
            if option in self.positive:
                if not (math.isfinite(value) and value > 0):
                    raise EvaluatorError(f"attack {self.name!r}: {option} must be a positive number, got {value}")
                continue
            minimum = self.minimums.get(option, 0)
            if not ((isinstance(value, numbers.Integral) or math.isfinite(value)) and value >= minimum):
                raise EvaluatorError(f"attack {self.name!r}: {option} must be at least {minimum}, got {value}")

    @abstractmethod
    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        """Candidates for x (N, C, H, W) in [0, 1] with labels y (N,), inside `epsilon` in `norm`."""

    @abstractmethod
    def work(self) -> Work:
        """The passes over one sample that one run makes at most, for the estimate before an assessment
        (evaluator.work_estimate)."""

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}


class MinimalNormAttack(Attack):
    """An attack that looks, per sample, for the closest adversarial example in `norm` (no budget).

    The evaluator measures each candidate's distance itself and re-checks it on the deployed graph; the
    robust accuracy at any epsilon, and the whole robustness curve, follow from those distances.
    """

    @abstractmethod
    def run_minimal(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, seed: int) -> AttackOutput:
        """Per sample the closest adversarial found for x (N, C, H, W) with labels y (N,); x itself where none was found."""

    def run(self, target: AttackTarget, x: np.ndarray, y: np.ndarray, epsilon: float, seed: int) -> AttackOutput:
        """Fixed-budget use: the minimal candidates; the caller keeps those within `epsilon`."""
        return self.run_minimal(target, x, y, seed)


def is_minimal(attack: Attack | type[Attack]) -> bool:
    return isinstance(attack, MinimalNormAttack) or (isinstance(attack, type) and issubclass(attack, MinimalNormAttack))


ATTACKS: dict[str, type[Attack]] = {}


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator: make `cls` available to create_attack under `cls.name`."""
    if cls.name in ATTACKS:
        raise ValueError(f"attack {cls.name!r} registered twice")
    ATTACKS[cls.name] = cls
    return cls


def create_attack(name: str, **options: Any) -> Attack:
    """A fresh attack object; unknown names and options are user errors."""
    if name not in ATTACKS:
        raise EvaluatorError(f"unknown attack {name!r}: expected one of {', '.join(sorted(ATTACKS))}")
    cls = ATTACKS[name]
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise EvaluatorError(f"attack {name!r} has no option {', '.join(unknown)}: its options are {', '.join(sorted(known))}")
    return cls(**options)


def parse_attack_spec(spec: str) -> Attack:
    """'square-linf:queries=5000:p_init=0.5' -> that attack with those options (typed as the option's default)."""
    name, *assignments = [part.strip() for part in spec.split(":")]
    if name not in ATTACKS:
        raise EvaluatorError(f"unknown attack {name!r}: expected one of {', '.join(sorted(ATTACKS))}")
    defaults = ATTACKS[name]().options()
    options: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or key not in defaults:
            raise EvaluatorError(f"attack option {assignment!r} of {name!r} is not KEY=VALUE with KEY one of {', '.join(sorted(defaults))}")
        if key in options:
            raise EvaluatorError(f"attack {name!r}: option {key} is given twice")
        options[key] = parse_option(name, key, text, defaults[key])
    return create_attack(name, **options)


def parse_option(attack: str, key: str, text: str, default: Any) -> Any:
    """An option value typed like its default: bool, int, float (finite) or str."""
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            value: Any = int(text)
            if value < 0:
                raise ValueError
            return value
        if isinstance(default, float):
            value = float(text)
            if not np.isfinite(value) or value < 0:
                raise ValueError
            return value
    except ValueError:
        raise EvaluatorError(f"attack {attack!r}: option {key}={text!r} is not a valid {type(default).__name__} "
                             "(non-negative, finite)") from None
    return text


def list_attacks() -> list[type[Attack]]:
    return [ATTACKS[name] for name in sorted(ATTACKS)]
