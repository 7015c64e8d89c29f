"""Sanity checks written into the report (after AutoAttack's checks): signs that a number may mislead."""

from __future__ import annotations

from typing import Any

import numpy as np

from evaluator.runtime import OnnxClassifier
from evaluator.results import AttackResult, Check, MinimalNormResult
from evaluator.stats import wilson_interval

BLACK_BOX_MARGIN = 0.01  # a black-box attack beating white-box by more than 1 point hints at gradient masking
BLACK_BOX_MIN_SAMPLES = 3  # ...when that is at least 3 samples: on a small sample one or two are chance, not a sign
NEAR_CHANCE = 0.1  # a clean accuracy less than this share of the way from chance to 1 is flagged
FLOAT_SOURCE_DISAGREEMENT = 0.10  # share of inputs a float32 source may label differently from its int8 / fp16 graph
QUANTIZED_TIES = 0.01  # share an int8 graph's converted QDQ arithmetic may label differently from its fused kernels
KERNEL_DISAGREEMENT = 0.01  # share of inputs an int8 graph's fused kernels may label differently from its QDQ arithmetic
UNBOUNDED_SUCCESS = 0.99  # share of samples an unbounded white-box attack should break


def output_is_logits(outputs: np.ndarray) -> Check:
    """outputs (N, K): rows in [0, 1] summing to 1 look like softmax probabilities, which flatten gradients."""
    probabilities = bool(((outputs >= 0) & (outputs <= 1)).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))
    detail = ("the outputs look like probabilities (rows in [0, 1] summing to 1): gradient and margin attacks are weakened; "
              "export logits") if probabilities else "the outputs are logits"
    return Check("logits-output", not probabilities, detail)


def above_chance(clean_accuracy: float, samples: int, classes: int) -> Check:
    """The clean accuracy on `samples` test images must be clearly above guessing among `classes`: at least
    NEAR_CHANCE of the way from chance (1 / classes) to 1, and the lower end of its 95 % Wilson interval above chance.
    Else the model, the dataset or their preprocessing do not match, and every robustness figure is meaningless."""
    low, _ = wilson_interval(round(clean_accuracy * samples), samples)
    chance = 1 / max(classes, 1)
    passed = low > chance and clean_accuracy >= chance + NEAR_CHANCE * (1 - chance)
    detail = (f"clean accuracy {clean_accuracy:.4f} on {samples:,} test images, chance {chance:.4f}" +
              ("" if passed else ": hardly better than guessing; check the dataset and the input settings (layout, "
               "range, mean, std)"))
    return Check("above-chance", passed, detail)


def deterministic(classifier: OnnxClassifier, x: np.ndarray) -> Check:
    """The same inputs twice must give the same outputs; a randomised model makes attacks look weaker than they are."""
    first, second = classifier.logits(x), classifier.logits(x)
    difference = float(np.abs(first - second).max())
    return Check("deterministic", difference == 0.0, f"max |difference| between two identical runs: {difference:.3g}")


def source_agrees(source: Any, classifier: OnnxClassifier, x: np.ndarray, allowed: float = 0.0) -> Check:
    """The gradient source behind white-box attacks must predict what the deployed graph predicts, on all but
    `allowed` (a share) of the inputs: a float32 source behind an int8 or fp16 graph may disagree on up to
    FLOAT_SOURCE_DISAGREEMENT (rounding moves labels near a decision boundary; more means it is not that graph's
    parent), an int8 graph's converted QDQ arithmetic on up to QUANTIZED_TIES (ties rounded the other way)."""
    import torch

    with torch.no_grad():
        source_labels = np.concatenate([source(torch.from_numpy(x[i:i + 500])).argmax(1).numpy() for i in range(0, len(x), 500)])
    disagreements = int((source_labels != classifier.predict(x)).sum())
    detail = f"source and deployed graph disagree on {disagreements} of {len(x)} inputs"
    return Check("source-agrees", disagreements <= allowed * len(x),
                 detail + (f" (at most {allowed:.0%} expected from rounding)" if allowed else ""))


def int8_kernels_exact(classifier: OnnxClassifier, x: np.ndarray) -> Check:
    """An int8 graph's fused integer kernels (what ships) must compute what its QuantizeLinear / DequantizeLinear
    nodes define: on x86 CPUs without VNNI, ONNX Runtime's int8 dot products add pairs in 16 bits, which saturate
    with full 8-bit weights (its documentation's reduce_range advice), and labels change."""
    from evaluator.runtime import unoptimised_logits

    fused, reference = classifier.logits(x), unoptimised_logits(classifier, x)
    changed = int((fused.argmax(1) != reference.argmax(1)).sum())
    difference = float(np.abs(fused - reference).max()) if len(x) else 0.0
    passed = changed <= KERNEL_DISAGREEMENT * len(x)
    detail = (f"the int8 kernels and the graph's QDQ arithmetic differ by at most {difference:.3g} in a logit and disagree "
              f"on {changed} of {len(x)} inputs")
    return Check("int8-kernels-exact", passed, detail + ("" if passed else ": the kernels saturate on this CPU (no VNNI?); "
                                                         "quantize with --reduce-range (7-bit weights)"))


def white_box_strongest(results: list[AttackResult]) -> Check:
    """At each norm and epsilon, samples that a score, decision or transfer attack broke but every white-box attack
    left robust should be rare: more than 1 point of them (and at least BLACK_BOX_MIN_SAMPLES) hints at gradient
    masking (AutoAttack's flag)."""
    problems = []
    unchecked = sorted({f"{r.norm} {r.epsilon:.4g}" for r in results if r.kind != "white-box"}
                       - {f"{r.norm} {r.epsilon:.4g}" for r in results if r.kind == "white-box"})
    if unchecked:
        problems.append(f"no white-box attack ran at {', '.join(unchecked)}: black-box evidence alone overstates robustness "
                        "and cannot rule out gradient masking")
    for result in results:
        if result.kind == "white-box":
            continue
        white = [r.robust for r in results if r.kind == "white-box" and (r.norm, r.epsilon) == (result.norm, result.epsilon)]
        if not white:
            continue
        broken = np.logical_and.reduce(white) & ~result.robust
        if broken.mean() > BLACK_BOX_MARGIN and broken.sum() >= BLACK_BOX_MIN_SAMPLES:
            problems.append(f"{result.name} at {result.norm} {result.epsilon:.4g} broke {broken.mean():.1%} of the samples "
                            f"({broken.sum()}) that every white-box attack left robust")
    detail = "; ".join(problems) if problems else (f"no black-box attack broke more than 1% (and {BLACK_BOX_MIN_SAMPLES} or more) "
                                                   "of the samples the white-box attacks could not")
    masking = any("broke" in problem for problem in problems)
    return Check("white-box-strongest", not problems, detail + ("; gradient masking is likely" if masking else ""))


def epsilon_monotone(results: list[AttackResult]) -> Check:
    """Per attack and norm, robust accuracy must not rise with epsilon; when it does, the attack is not converging."""
    problems = []
    series: dict[tuple[str, str], list[AttackResult]] = {}
    for result in results:
        series.setdefault((result.name, result.norm), []).append(result)
    for (name, norm), members in series.items():
        members = sorted(members, key=lambda r: r.epsilon)
        for smaller, larger in zip(members, members[1:]):
            if larger.robust_accuracy > smaller.robust_accuracy:
                problems.append(f"{name} {norm}: {smaller.robust_accuracy:.3f} at {smaller.epsilon:.4g} but "
                                f"{larger.robust_accuracy:.3f} at {larger.epsilon:.4g}")
    detail = "; ".join(problems) if problems else "robust accuracy never rises with epsilon"
    return Check("epsilon-monotone", not problems, detail + ("; more steps or restarts are needed" if problems else ""))


def unbounded_attacks_succeed(results: list[MinimalNormResult]) -> Check:
    """A minimal-norm white-box attack has no budget: per norm, the white-box ones together (one attack, or one run per
    gradient source) should find an adversarial example for (nearly) every sample they attacked."""
    problems = []
    by_norm: dict[str, list[MinimalNormResult]] = {}
    for result in results:
        if result.kind == "white-box" and result.attacked:
            by_norm.setdefault(result.norm, []).append(result)
    for norm, members in by_norm.items():
        missed = int(np.isinf(np.min([member.distances for member in members], axis=0)).sum())
        attacked = members[0].attacked
        if attacked - missed < UNBOUNDED_SUCCESS * attacked:
            problems.append(f"{' + '.join(member.name for member in members)} found none for {missed} of {attacked} samples")
    detail = "; ".join(problems) if problems else "the minimal-norm white-box attacks found adversarial examples for every sample"
    return Check("unbounded-success", not problems, detail + ("; gradient masking or too few steps" if problems else ""))


def gradients_nonzero(source: Any, x: np.ndarray, y: np.ndarray) -> Check:
    """Input gradients of the cross-entropy on the source: zero or non-finite ones block every gradient attack."""
    import torch

    inputs = torch.from_numpy(x).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(source(inputs), torch.from_numpy(y), reduction="sum")
    (grad,) = torch.autograd.grad(loss, inputs)
    norms = grad.flatten(1).norm(dim=1).numpy()
    bad = int((~np.isfinite(norms) | (norms == 0)).sum())
    return Check("gradients-nonzero", bad == 0, f"{bad} of {len(x)} samples have a zero or non-finite input gradient")
