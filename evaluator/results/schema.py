"""Versioned JSON forms: a reader accepts the version its writer writes and says clearly when it meets another."""

from __future__ import annotations

from typing import Any


def check_schema(data: dict[str, Any], expected: str, what: str) -> None:
    """Raise ValueError unless data["schema_version"] is `expected` (the message names both versions)."""
    found = data.get("schema_version")
    if found != expected:
        raise ValueError(f"this {what} has schema version {found}, this evaluator reads {expected}: assess the model again")
