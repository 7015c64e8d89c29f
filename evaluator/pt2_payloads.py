"""The weights and constants of a .pt2 (data/weights, data/constants): each config entry is a raw tensor record of
bounded size or a pickle that passes the pickle check; no Python or TorchBind objects."""

from __future__ import annotations

import math
import re
from typing import Any

from evaluator.pt2_pickle import check_torch_pickle
from evaluator.pt2_program import load_json
from evaluator.pt2_zip import MAX_UNPACKED_BYTES, UnsafeArchive


def check_payload_config(relative: dict[str, bytes], name: str, kind: str, label: str) -> None:
    """A weights or constants config: plain tensors, or pickles that pass the pickle check; no objects."""
    config = load_json(relative[name], f"{label}: {name}")
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise UnsafeArchive(f"{label}: {name} is not a payload config")
    for fqn, meta in entries.items():
        path = meta.get("path_name") if isinstance(meta, dict) else None
        if not isinstance(path, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", path):
            raise UnsafeArchive(f"{label}: {name} entry {fqn!r} has no valid path_name")
        if kind == "constants" and not path.startswith("tensor_"):
            raise UnsafeArchive(f"{label}: constant {fqn!r} is a Python or TorchBind object ({path}), not a tensor")
        payload = relative.get(f"data/{kind}/{path}")
        if payload is None:
            raise UnsafeArchive(f"{label}: {name} names {path}, which the archive lacks")
        if meta.get("use_pickle"):
            check_torch_pickle(payload, f"{label}: data/{kind}/{path}")
        else:
            check_tensor_record(meta.get("tensor_meta"), payload, f"{label}: {kind} {fqn!r}")


def check_tensor_record(meta: Any, payload: bytes, label: str) -> None:
    """A raw tensor record: whole-number sizes, and no values declared over an empty record (torch would make
    zeros of the declared size: a few bytes of JSON asking for terabytes)."""
    sizes = meta.get("sizes") if isinstance(meta, dict) else None
    values = [size.get("as_int") if isinstance(size, dict) else None for size in sizes] if isinstance(sizes, list) else [None]
    if any(not isinstance(value, int) or isinstance(value, bool) or value < 0 for value in values):
        raise UnsafeArchive(f"{label} has no whole-number sizes")
    if math.prod(values) > MAX_UNPACKED_BYTES or (not payload and math.prod(values)):
        raise UnsafeArchive(f"{label} declares {math.prod(values):,} values but stores {len(payload):,} bytes")
