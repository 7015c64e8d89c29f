"""A deployed graph's precision and, for an int8 or fp16 artifact, how it compares with its float32 parent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class PrecisionResult:
    """name: fp32, int8, int8-dynamic or fp16 (evaluator.precision), read from the graph; method: the metadata's
    record of how it was made (None for fp32 or a graph from elsewhere). float_parent: file name of the float32 .onnx
    it was made from; float_parent_accuracy: that parent's clean accuracy on the same test split; speedup: this
    graph's throughput over the parent's at the same batch and provider, the two timed side by side in alternating
    rounds (a sweep's re-timing replaces it with the ratio of the re-timed figures); None when latency was skipped or
    the parent is not at hand."""

    name: str
    method: str | None = None
    float_parent: str | None = None
    float_parent_accuracy: float | None = None
    float_parent_throughput_per_s: float | None = None
    speedup: float | None = None

    @property
    def is_reduced(self) -> bool:
        """An int8 or fp16 graph (not float32)."""
        return self.name != "fp32"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "PrecisionResult | None":
        if data is None:
            return None
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})
