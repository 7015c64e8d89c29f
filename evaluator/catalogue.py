"""The pruning methods a PruneRequest names (`evaluator prune --method`; `evaluator prune --list` lists them).

The study's nine: granularity {unstructured, kernel, filter} x criterion {global magnitude, local
magnitude, local random}; structured variants prune conv layers only, as the study did. The
torch-pruning channel criteria prune conv filters and hidden dense units (the classifier's outputs
are protected), locally or globally (the request's scope). Filter methods remove channels physically;
unstructured and kernel methods keep dense shapes and zero weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from evaluator.errors import EvaluatorError

Granularity = Literal["unstructured", "kernel", "filter"]
Scope = Literal["global", "local"]


@dataclass(frozen=True)
class PruningMethod:
    """name: as requested; criterion: what ranks units; scope: None when the request picks it."""

    name: str
    granularity: Granularity
    criterion: str
    scope: Scope | None
    conv_only: bool
    study: bool
    summary: str

    @property
    def physical(self) -> bool:
        """True when pruned units are removed from the graph (it gets smaller and faster)."""
        return self.granularity == "filter"

    @property
    def default_basis(self) -> str:
        """The study measured its rates over the layers it pruned; channel criteria over all weights."""
        return "pruned" if self.study else "all"


def study_methods() -> list[PruningMethod]:
    methods = []
    for granularity in ("unstructured", "kernel", "filter"):
        unit = {"unstructured": "single weights", "kernel": "whole k x k conv kernels", "filter": "whole conv filters"}[granularity]
        layers = "conv and dense layers" if granularity == "unstructured" else "conv layers"
        for criterion, scope, text in (("magnitude", "global", "smallest L1 across all layers"),
                                       ("magnitude", "local", "smallest L1, same share per layer"),
                                       ("random", "local", "random, same share per layer")):
            name = f"{granularity}-{scope}-{criterion}"
            methods.append(PruningMethod(name, granularity, criterion, scope, granularity != "unstructured", True,  # type: ignore[arg-type]
                                         f"study: {unit} of {layers}, {text}"))
    return methods


CHANNEL_CRITERIA = {
    "l1": "L1 group magnitude",
    "l2": "L2 group magnitude",
    "taylor": "first-order Taylor (gradient x weight) on a training batch",
    "bn-scale": "batch-norm scale |gamma| (models with batch norm)",
    "lamp": "LAMP (layer-adaptive magnitude)",
    "fpgm": "FPGM (distance to the geometric median)",
    "random": "random",
}


def channel_methods() -> list[PruningMethod]:
    return [PruningMethod(f"filter-{key}", "filter", key, None, False, False, f"torch-pruning: {text}; filters and hidden units")
            for key, text in CHANNEL_CRITERIA.items()]


METHODS: dict[str, PruningMethod] = {method.name: method for method in [*study_methods(), *channel_methods()]}
STUDY_METHODS: tuple[str, ...] = tuple(name for name, method in METHODS.items() if method.study)
ARCHITECTURES: tuple[str, ...] = ("lenet5", "resnet8", "vgg11", "resnet18", "mobilenetv2")


def get_method(name: str) -> PruningMethod:
    if name not in METHODS:
        raise EvaluatorError(f"unknown pruning method {name!r} (known: {', '.join(METHODS)})", field="method")
    return METHODS[name]
