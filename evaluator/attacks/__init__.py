"""Adversarial attacks behind one registry; importing this package registers the built-in attacks."""

from evaluator.attacks.base import (
    Attack, AttackKind, AttackOutput, AttackTarget, MinimalNormAttack, Norm, Work, create_attack, is_minimal, list_attacks,
    parse_attack_spec, register_attack,
)
from evaluator.attacks import apgd, cw, decision, fmn, score, transfer, whitebox  # noqa: F401  (registration)

__all__ = ["Attack", "AttackKind", "AttackOutput", "AttackTarget", "MinimalNormAttack", "Norm", "create_attack", "is_minimal",
           "list_attacks", "parse_attack_spec", "register_attack", "Work"]
