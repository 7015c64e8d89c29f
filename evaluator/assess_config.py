"""The options of one assessment (`evaluator assess`, a sweep's assessments, the Python API). Attack-free: the attacks
are imported only when they are made, so results and renderers can carry a config without loading them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from evaluator.default_attacks import DEFAULT_ATTACKS, default_attacks
from evaluator.errors import EvaluatorError
from evaluator.input_options import InputOverrides
from evaluator.limits import MAX_BUDGETS

if TYPE_CHECKING:
    from evaluator.attacks import Attack
    from evaluator.policy_rules import Policy

# The AssessConfig (and SweepConfig) field holding each norm's budgets, in the order norms are listed.
BUDGET_FIELDS = {"Linf": "epsilons", "L2": "epsilons_l2", "L1": "epsilons_l1", "L0": "epsilons_l0"}

KIND_ORDER = ("white-box", "transfer", "score", "decision")  # a cascade runs the strongest, cheapest attacks first


@dataclass(frozen=True)
class AssessConfig:
    """Options of `evaluator assess`. Budgets per norm: Linf, L2, L1 in [0, 1] pixel units over all input values;
    L0 in changed pixel positions. cascade: each attack only attacks what the attacks before it left robust.
    attacks: specs like 'square-linf' or 'square-linf:queries=5000'; the default is Linf's default cascade
    (evaluator.default_attacks)."""

    dataset: str | None = None
    data_dir: Path | None = None
    source: Path | None = None
    surrogate: Path | None = None
    samples: int = 1000
    epsilons: tuple[float, ...] = (8 / 255,)
    epsilons_l2: tuple[float, ...] = (1.0,)
    epsilons_l1: tuple[float, ...] = (10.0,)
    epsilons_l0: tuple[float, ...] = (10.0,)
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    cascade: bool = True
    provider: str = "auto"
    device: int = 0  # the GPU ONNX Runtime's CUDA EP uses
    torch_device: str = "auto"  # where torch computes the white-box and transfer attacks: auto, cpu, cuda, cuda:N
    batch_size: int = 256
    throughput_batch: int = 256
    latency_batches: tuple[int, ...] = ()  # more batch sizes to time (e.g. those a sign-off policy names)
    threads: int | None = None
    seed: int = 0
    skip_latency: bool = False
    inputs: InputOverrides = InputOverrides()  # how the graphs take images and give scores (else metadata, graph)

    def epsilons_for(self, norm: str) -> tuple[float, ...]:
        return getattr(self, BUDGET_FIELDS[norm])

    def create_attacks(self) -> list[Attack]:
        """The attacks in run order: white-box, transfer, score, decision (stable within a kind)."""
        from evaluator.attacks import parse_attack_spec

        attacks = [parse_attack_spec(spec) for spec in self.attacks]
        return sorted(attacks, key=lambda attack: KIND_ORDER.index(attack.kind.value))

    def progress_steps(self, models: int) -> int:
        """The steps `assess` reports (evaluator.progress.Step) for `models` models: per model its latency (unless
        skipped), its clean accuracy, its precision and kernel placement, one per (attack, epsilon) and one per minimal-norm
        attack."""
        from evaluator.attacks import is_minimal

        attacks = sum(1 if is_minimal(a) else len(self.epsilons_for(a.norm.value)) for a in self.create_attacks())
        return models * ((0 if self.skip_latency else 1) + 2 + attacks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: str(value) if isinstance(value, Path) else value for key, value in data.items()}


def check_torch_device(name: str) -> None:
    """A torch device other than auto and cpu (a GPU, or a typo) checked before any work; torch is imported only then."""
    if name not in ("auto", "cpu"):
        from evaluator.torch_device import choose_torch_device

        choose_torch_device(name)


def check_budgets(config: AssessConfig, pixels: int | None = None) -> None:
    """Budgets per norm: Linf in (0, 1], L2 and L1 positive, L0 a whole number of pixels >= 1; at most MAX_BUDGETS
    of each."""
    for name in BUDGET_FIELDS:
        values = config.epsilons_for(name)
        if len(values) > MAX_BUDGETS:
            raise EvaluatorError(f"{len(values):,} {name} epsilons: at most {MAX_BUDGETS:,} budgets per norm")
    for epsilon in config.epsilons:
        if not 0 < epsilon <= 1:  # also refuses NaN
            raise EvaluatorError(f"Linf epsilon must be in (0, 1] (pixel units), got {epsilon}")
    for name, values in (("L2", config.epsilons_l2), ("L1", config.epsilons_l1)):
        for epsilon in values:
            if not 0 < epsilon < float("inf"):
                raise EvaluatorError(f"{name} epsilon must be a positive number, got {epsilon}")
    for epsilon in config.epsilons_l0:
        if not (epsilon >= 1 and float(epsilon).is_integer()):
            raise EvaluatorError(f"L0 epsilon counts changed pixels: a whole number >= 1, got {epsilon}")


def check_attack_norms(config: AssessConfig, asked: Iterable[str]) -> None:
    """Every norm in `asked` (those whose budgets the user gave) has a selected attack working in it: budgets no attack
    uses would silently measure nothing. The error names the budget setting (e.g. epsilons_l2)."""
    norms = {attack.norm.value for attack in config.create_attacks()}
    for norm in asked:
        if norm not in norms:
            raise EvaluatorError(f"{BUDGET_FIELDS[norm]} gives {norm} budgets but no selected attack works in {norm} "
                                 f"(selected: {', '.join(config.attacks) or 'none'}): choose attacks in {norm} "
                                 "(see `evaluator attacks`)", field=BUDGET_FIELDS[norm])


def plan_assessment(config: AssessConfig, asked: Sequence[str], policy: Policy | None, attacks_chosen: bool) -> AssessConfig:
    """The config an assessment runs, from what the user gave: `asked` the norms whose budgets they set, `policy` a
    sign-off policy whose budgets and latency batch sizes are added, `attacks_chosen` whether they named the attacks
    (else the default cascades of the asked norms and the policy's, Linf's when none). Every asked norm must have an
    attack (check_attack_norms)."""
    if policy is not None:
        config = replace(config, latency_batches=policy.latency_batches(), **{
            BUDGET_FIELDS[norm]: tuple(sorted({*config.epsilons_for(norm), *values})) for norm, values in policy.epsilons().items()})
    if not attacks_chosen:
        config = replace(config, attacks=default_attacks([*asked, *(policy.epsilons() if policy else ())]))
    check_attack_norms(config, asked)
    return config
