"""Versioned JSON forms: a reader accepts the version its writer writes and says clearly when it meets another."""

from __future__ import annotations

from typing import Any


def check_schema(data: dict[str, Any], readable: tuple[str, ...], what: str) -> None:
    """Raise ValueError unless data["schema_version"] is one of `readable` (the message names the versions)."""
    found = data.get("schema_version")
    if found not in readable:
        raise ValueError(f"this {what} has schema version {found}, this evaluator reads {', '.join(readable[:-1]) + ' and ' + readable[-1] if len(readable) > 1 else readable[0]}: "
                         "assess the model again")
