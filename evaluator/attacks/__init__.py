"""Adversarial attacks behind one registry; importing this package registers the built-in attacks."""

from evaluator.attacks.base import (
    Attack, AttackKind, AttackOutput, AttackTarget, Norm, create_attack, list_attacks, register_attack,
)
from evaluator.attacks import score, transfer, whitebox  # noqa: F401  (registration)

__all__ = ["Attack", "AttackKind", "AttackOutput", "AttackTarget", "Norm", "create_attack", "list_attacks", "register_attack"]
