"""Where each kernel of a deployed graph really ran: ONNX Runtime's provider, input types and time per kernel, with
the kernels that fell back (float32 compute in a reduced-precision graph, a kernel off the session's provider)
flagged; frozen, with their JSON form. numpy and stdlib only (evaluator.placement reads the profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLOAT32 = "float"  # ONNX Runtime's profile name for a float32 tensor
# Kernels that do a layer's arithmetic. FLOAT_COMPUTE_KERNELS repeats evaluator.precision.FLOAT_COMPUTE_OPS (results do
# not import onnx; a test keeps the two equal). INTEGER_COMPUTE_KERNELS compute in int8/uint8 (DynamicQuantizeMatMul
# takes float32 and quantizes it inside).
FLOAT_COMPUTE_KERNELS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul"})
INTEGER_COMPUTE_KERNELS = frozenset({"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger",
                                     "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QAttention"})
SUMMARY_FALLBACKS = 3  # fallbacks named in summary(); the rest are counted


def short_provider(provider: str) -> str:
    """CPUExecutionProvider -> CPU."""
    return provider.removesuffix("ExecutionProvider") or provider


@dataclass(frozen=True)
class KernelPlacement:
    """One kernel of ONNX Runtime's optimised graph. node: its name there (the profile's event name without
    "_kernel_time"); op: the kernel that ran (QLinearConv, FusedGemm, ...); input_types: its inputs' element types as
    the profile names them ('float' is float32; weights ORT pre-packed are not listed); mean_us: its duration per run
    in microseconds; fallback: why it is flagged, None when it runs where and how it should."""

    node: str
    op: str
    provider: str
    input_types: tuple[str, ...]
    mean_us: float
    fallback: str | None = None

    @property
    def float32_compute(self) -> bool:
        """A float compute kernel fed float32 (its first input: the data it computes on)."""
        return self.op in FLOAT_COMPUTE_KERNELS and self.input_types[:1] == (FLOAT32,)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op": self.op, "provider": self.provider, "input_types": list(self.input_types),
                "mean_us": self.mean_us, "fallback": self.fallback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KernelPlacement":
        return cls(data["node"], data["op"], data["provider"], tuple(data["input_types"]), data["mean_us"],
                   data.get("fallback"))


@dataclass(frozen=True)
class Placement:
    """The kernels of one profiled session in the order they first ran. provider: the session's first provider;
    precision: the graph's (fp32, int8, int8-dynamic, fp16: evaluator.precision); batch_size: samples per run."""

    provider: str
    precision: str
    batch_size: int
    kernels: tuple[KernelPlacement, ...]

    @property
    def fallbacks(self) -> tuple[KernelPlacement, ...]:
        return tuple(kernel for kernel in self.kernels if kernel.fallback is not None)

    def time_share(self) -> dict[str, float]:
        """Per provider its share of the kernels' time (sums to 1; {} when no time was recorded)."""
        total = sum(kernel.mean_us for kernel in self.kernels)
        shares: dict[str, float] = {}
        for kernel in self.kernels:
            shares[kernel.provider] = shares.get(kernel.provider, 0.0) + kernel.mean_us
        return {provider: time / total for provider, time in shares.items()} if total > 0 else {}

    @property
    def float_compute_share(self) -> float | None:
        """In an int8, int8-dynamic or fp16 graph, the share of compute-kernel time spent in float32 compute kernels
        (0: all of it in the graph's precision); None for an fp32 graph or without compute-kernel time."""
        if self.precision == "fp32":
            return None
        compute = [kernel for kernel in self.kernels
                   if kernel.op in FLOAT_COMPUTE_KERNELS or kernel.op in INTEGER_COMPUTE_KERNELS]
        total = sum(kernel.mean_us for kernel in compute)
        if total <= 0:
            return None
        return sum(kernel.mean_us for kernel in compute if kernel.float32_compute) / total

    def summary(self) -> str:
        """One line: kernels per provider, then the fallbacks (node, kernel, reason), e.g. "12 kernels on CPU; 1
        fallback: conv2 (Conv, float32 compute in an int8 graph); float32 compute 40% of compute time"."""
        counts: dict[str, int] = {}
        for kernel in self.kernels:
            counts[short_provider(kernel.provider)] = counts.get(short_provider(kernel.provider), 0) + 1
        if len(counts) == 1:
            line = f"{len(self.kernels)} kernel{'s' * (len(self.kernels) != 1)} on {next(iter(counts))}"
        else:
            line = f"{len(self.kernels)} kernels: " + ", ".join(f"{count} on {name}" for name, count in counts.items())
        flagged = self.fallbacks
        if not flagged:
            line += "; no fallbacks"
        else:
            named = ", ".join(f"{kernel.node} ({kernel.op}, {kernel.fallback})" for kernel in flagged[:SUMMARY_FALLBACKS])
            more = f", and {len(flagged) - SUMMARY_FALLBACKS} more" if len(flagged) > SUMMARY_FALLBACKS else ""
            line += f"; {len(flagged)} fallback{'s' * (len(flagged) != 1)}: {named}{more}"
        share = self.float_compute_share
        if share:
            line += f"; float32 compute {share:.0%} of compute time"
        return line

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; time_share, float_compute_share and the fallback count are derived (from_dict ignores them)."""
        return {"provider": self.provider, "precision": self.precision, "batch_size": self.batch_size,
                "kernels": [kernel.to_dict() for kernel in self.kernels], "fallbacks": len(self.fallbacks),
                "time_share": self.time_share(), "float_compute_share": self.float_compute_share}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Placement":
        return cls(data["provider"], data["precision"], data["batch_size"],
                   tuple(KernelPlacement.from_dict(kernel) for kernel in data["kernels"]))
