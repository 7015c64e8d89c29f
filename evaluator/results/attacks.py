"""What an attack found, per attack and epsilon, per norm's worst case and per minimal-norm attack: frozen results
with their JSON form. numpy only: renderers import these without the attacks, the runtime or torch."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from evaluator.stats import wilson_interval

BUDGET_SLACK = 1e-6  # float32 rounding when x +- epsilon is stored


# Per-sample outcome codes of a fixed-budget result (JSON `outcomes`: one character per attacked sample, in the order
# of the model's `samples.indices`).
OUTCOME_CODES = {
    "R": "robust: classified correctly before and after the attack",
    "B": "broken: an adversarial example within the budget fools the deployed graph",
    "M": "misclassified without attack (not attacked, not robust)",
    "-": "not attacked: an earlier attack of the cascade at this budget broke it (not robust)",
}


def outcome_codes(clean_correct: np.ndarray, attacked: np.ndarray, robust: np.ndarray) -> np.ndarray:
    """(N,) one-character codes of OUTCOME_CODES from (N,) bool masks: classified correctly without attack, attacked,
    robust after the attack (robust implies attacked implies clean_correct)."""
    codes = np.full(len(robust), "B", dtype="<U1")
    codes[robust] = "R"
    codes[clean_correct & ~attacked] = "-"
    codes[~clean_correct] = "M"
    return codes


def codes_text(codes: np.ndarray | None) -> str | None:
    """The codes as one string ('RRBM-...'), None when the result holds none."""
    return None if codes is None else "".join(codes.tolist())


def codes_array(text: str | None) -> np.ndarray | None:
    """The inverse of codes_text: (N,) one-character codes, None for None."""
    return None if text is None else np.array(list(text), dtype="<U1")


def distance_array(values: list[float | None]) -> np.ndarray:
    """The inverse of distance_list: (N,) float64, inf where JSON holds null."""
    return np.array([np.inf if d is None else d for d in values], dtype=np.float64)


def interval(successes: int, trials: int) -> list[float]:
    """The 95 % Wilson interval of successes / trials as JSON's [low, high]."""
    return list(wilson_interval(successes, trials))


@dataclass(frozen=True)
class AttackResult:
    """One attack at one epsilon on `samples` test inputs. Accuracies are shares in [0, 1].

    robust_accuracy counts samples correct on the deployed graph before and after the attack; a sample
    misclassified without attack is not robust. out_of_budget counts raw candidates the attack returned
    outside [0, 1] or the budget (they are projected before the re-check; non-zero means an attack bug).
    """

    name: str
    norm: str
    kind: str
    epsilon: float
    samples: int
    clean_accuracy: float
    robust_accuracy: float
    attacked: int
    successes: int
    out_of_budget: int
    queries: float | None
    queries_median_success: float | None
    options: dict[str, Any]
    robust: np.ndarray = field(repr=False, compare=False)  # (samples,) bool, per sample; serialised in `outcomes`
    outcome: np.ndarray | None = field(default=None, repr=False, compare=False)  # (samples,) OUTCOME_CODES characters

    def to_dict(self) -> dict[str, Any]:
        """The fields, plus 95 % Wilson intervals [low, high] of clean_accuracy (on these samples) and robust_accuracy,
        and `outcomes`: one OUTCOME_CODES character per sample (None for a result built without them)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("robust", "outcome")}
        data["clean_accuracy_ci"] = interval(round(self.clean_accuracy * self.samples), self.samples)
        data["robust_accuracy_ci"] = interval(int(np.count_nonzero(self.robust)), self.samples)
        data["outcomes"] = codes_text(self.outcome)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AttackResult":
        """The result to_dict wrote; the per-sample robust mask comes back from `outcomes` (R: robust)."""
        outcome = codes_array(data["outcomes"])
        if outcome is None:
            raise ValueError(f"the {data['name']} result holds no per-sample outcomes")
        plain = {f.name: data[f.name] for f in fields(cls) if f.name not in ("robust", "outcome")}
        return cls(**plain, robust=outcome == "R", outcome=outcome)


@dataclass(frozen=True)
class WorstCase:
    """Per norm and epsilon, a sample is robust only if it survived every attack run (the union of successes)."""

    norm: str
    epsilon: float
    samples: int
    robust_accuracy: float
    attacks: tuple[str, ...]
    robust_count: int | None = None  # samples robust against every attack
    outcome: np.ndarray | None = field(default=None, repr=False, compare=False)  # (samples,) codes R, B or M

    def to_dict(self) -> dict[str, Any]:
        """robust_accuracy_ci: its 95 % Wilson interval [low, high]; outcomes: per sample R (survived every attack),
        B (some attack broke it) or M (misclassified without attack)."""
        robust = self.robust_count if self.robust_count is not None else round(self.robust_accuracy * self.samples)
        return {"norm": self.norm, "epsilon": self.epsilon, "samples": self.samples,
                "robust_accuracy": self.robust_accuracy, "robust_accuracy_ci": interval(robust, self.samples),
                "attacks": list(self.attacks), "outcomes": codes_text(self.outcome)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WorstCase":
        outcome = codes_array(data["outcomes"])
        robust = int((outcome == "R").sum()) if outcome is not None else None
        return cls(data["norm"], data["epsilon"], data["samples"], data["robust_accuracy"], tuple(data["attacks"]),
                   robust, outcome)


@dataclass(frozen=True)
class MinimalNormResult:
    """A minimal-norm attack on `samples` test inputs: per sample the distance (evaluator's own, in `norm`) of the
    closest adversarial example that fools the deployed graph; 0 for samples misclassified without attack,
    inf where none was found. Robust accuracy at eps is the share of samples with distance > eps.
    """

    name: str
    norm: str
    kind: str
    samples: int
    clean_accuracy: float
    attacked: int
    found: int
    out_of_box: int
    median_distance: float
    queries: float | None
    options: dict[str, Any]
    distances: np.ndarray = field(repr=False, compare=False)  # (samples,) float64
    sample_queries: np.ndarray | None = field(default=None, repr=False, compare=False)  # (samples,), NaN: not attacked
    clean_correct: np.ndarray | None = field(default=None, repr=False, compare=False)  # (samples,) bool

    def robust_at(self, epsilon: float) -> np.ndarray:
        """(samples,) bool: no adversarial example within epsilon."""
        return self.distances > epsilon * (1 + BUDGET_SLACK) + BUDGET_SLACK

    def curve(self, epsilons: np.ndarray) -> np.ndarray:
        """Robust accuracy at each epsilon (E,); never rises with epsilon."""
        return np.array([self.robust_at(float(eps)).mean() for eps in epsilons])

    def curve_points(self) -> list[list[float]]:
        return curve_points(self.distances)

    def at_epsilon(self, epsilon: float, still_robust: np.ndarray | None = None) -> AttackResult:
        """The fixed-budget result at epsilon, for tables and the per-norm worst case. still_robust: (samples,) bool,
        in a cascade what the attacks before left robust; the attack ran on every sample (for its curve), so then
        the result counts as attacked, broken and queried only those."""
        robust = self.robust_at(epsilon)
        successes = int(((self.distances > 0) & ~robust).sum())
        attacked, queries = self.attacked, self.queries
        attacked_mask = self.distances > 0  # distance 0: misclassified without attack, or not attacked in a cascade
        if still_robust is not None:
            successes = int((still_robust & ~robust).sum())
            robust = robust & still_robust
            attacked = int(still_robust.sum())
            attacked_mask = still_robust
            if self.sample_queries is not None:
                queries = float(self.sample_queries[still_robust].mean()) if attacked else None
        outcome = None
        if self.clean_correct is not None:
            outcome = outcome_codes(self.clean_correct, self.clean_correct & attacked_mask, robust)
        return AttackResult(
            name=self.name, norm=self.norm, kind=self.kind, epsilon=float(epsilon), samples=self.samples,
            clean_accuracy=self.clean_accuracy, robust_accuracy=float(robust.mean()), attacked=attacked,
            successes=successes, out_of_budget=self.out_of_box, queries=queries, queries_median_success=None,
            options=self.options, robust=robust, outcome=outcome,
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields, `distances` per sample (null where none was found; 0 where not attacked: misclassified without
        attack, or in a cascade broken before), the curve, and clean_accuracy_ci (95 % Wilson interval)."""
        hidden = ("distances", "sample_queries", "clean_correct")
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        data["clean_accuracy_ci"] = interval(round(self.clean_accuracy * self.samples), self.samples)
        data["median_distance"] = None if not np.isfinite(self.median_distance) else self.median_distance
        data["distances"] = distance_list(self.distances)
        data["curve"] = self.curve_points()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MinimalNormResult":
        """The result to_dict wrote; per-sample queries and clean correctness are not in the JSON (None)."""
        hidden = ("distances", "sample_queries", "clean_correct", "median_distance")
        plain = {f.name: data[f.name] for f in fields(cls) if f.name not in hidden}
        median = data["median_distance"]
        return cls(**plain, median_distance=float("inf") if median is None else median,
                   distances=distance_array(data["distances"]))


def distance_list(values: np.ndarray) -> list[float | None]:
    """Per-sample distances (N,) as JSON: floats, null where no adversarial example was found (inf)."""
    return [None if not np.isfinite(d) else float(d) for d in values]


def curve_points(sample_distances: np.ndarray) -> list[list[float]]:
    """The robustness curve as [eps, robust accuracy] steps from per-sample distances (N,): the accuracy at 0 and just
    after each distinct distance found (robust means distance > eps); it never rises."""
    points = [[0.0, float((sample_distances > 0).mean())]]
    for value in np.unique(sample_distances[np.isfinite(sample_distances) & (sample_distances > 0)]):
        points.append([float(value), float((sample_distances > value).mean())])
    return points


def worst_distances(results: list[MinimalNormResult]) -> dict[str, np.ndarray]:
    """Per norm the smallest distance over the minimal-norm attacks run, per sample."""
    by_norm: dict[str, np.ndarray] = {}
    for result in results:
        by_norm[result.norm] = np.minimum(by_norm[result.norm], result.distances) if result.norm in by_norm else result.distances
    return by_norm
