"""The default attacks of `assess`, `sweep` and the sign-off policy: per norm one cascade, cheapest first.

Each cascade ends at least as strong as AutoAttack 'standard' on the zoo (README, "Default attacks"): APGD with
cross-entropy, then targeted APGD on the DLR loss towards the 4 likeliest wrong classes on what APGD-CE left, then
the Square attack on the deployed graph, so that the gradient-masking check keeps black-box evidence.
"""

from __future__ import annotations

from typing import Iterable

DEFAULT_CASCADES: dict[str, tuple[str, ...]] = {
    "Linf": ("apgd-ce-linf", "apgd-t-linf:target_classes=4", "square-linf"),
    "L2": ("apgd-ce-l2", "apgd-t-l2:target_classes=4", "square-l2"),
}
DEFAULT_NORM = "Linf"  # attacked when no budget names a norm


def default_attacks(norms: Iterable[str] = ()) -> tuple[str, ...]:
    """The default cascades of `norms` (those whose budgets a user gave) in the order of DEFAULT_CASCADES; Linf's
    when `norms` is empty. Norms without a default cascade (L1, L0) add nothing: they need `--attacks`."""
    wanted = set(norms) or {DEFAULT_NORM}
    return tuple(spec for norm, cascade in DEFAULT_CASCADES.items() if norm in wanted for spec in cascade)


DEFAULT_ATTACKS = default_attacks()
