"""What a .pt2 may contain before torch is allowed to read it: no pickle outside a few tensor-rebuilding globals,
no Python code, no compiled library.

`torch.export.load` trusts its input: it unpickles payloads with `weights_only=False` (or plain `pickle.loads`),
evaluates the graph's symbolic shapes with sympy (an `eval`), compiles `guards_code` into Python, resolves node
targets as any attribute path under `torch`, and can load AOTInductor shared libraries. So a crafted archive is
checked here first, from the bytes that will be loaded (read once; nothing is read from disk again):

1. The zip: no duplicate names, a bounded size, only the entries `torch.export.save` writes for a plain program
   (no AOTInductor, no opaque or TorchBind objects, no legacy layouts).
2. Every pickle (sample inputs, pickled weights or constants) is run through a shadow unpickler whose globals
   resolve to inert stand-ins: each global it asks for must be on ALLOWED_GLOBALS, whatever tricks the pickle
   plays with its stack and memo. Nothing real is built, so nothing runs.
3. The graph (models/*.json): node targets on an allow-list (ATen operators, a few operator-module and symbolic
   helpers), every symbolic expression and guard a small expression of literals, symbols and allowed functions,
   names that are identifiers, tensor inputs only.

The archive is then re-packed from exactly the bytes checked, and `load_program` reads it with torch.load's
`weights_only=True` forced for the whole call as a second line of defence.

Each step has its module: pt2_zip (the zip; UnsafeArchive), pt2_pickle (the shadow unpickler), pt2_payloads
(weights and constants), pt2_program (the program JSON) and pt2_expressions (expressions and guards). This one
checks the archive's layout and sends each entry to its check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluator.pt2_expressions import check_expression
from evaluator.pt2_payloads import check_payload_config
from evaluator.pt2_pickle import check_torch_pickle, scan_pickle
from evaluator.pt2_program import check_program_json
from evaluator.pt2_zip import MAX_ARCHIVE_BYTES, UnsafeArchive, check_zip_file, read_zip, repack

__all__ = ["MAX_ARCHIVE_BYTES", "CheckedArchive", "UnsafeArchive", "check_expression", "check_pt2", "check_zip_file",
           "scan_pickle"]

# Entries below the archive's root folder that `torch.export.save` writes for a plain program.
ENTRY = re.compile(r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                   r"|models/[A-Za-z0-9_.-]+\.json|data/weights/[A-Za-z0-9_.-]+|data/constants/[A-Za-z0-9_.-]+"
                   r"|data/sample_inputs/[A-Za-z0-9_.-]+\.pt|extra/[^/]+)")


@dataclass(frozen=True)
class CheckedArchive:
    """A .pt2 that passed every check, re-packed from the checked bytes; extra_files: its extra/ entries as text."""

    data: bytes
    extra_files: dict[str, str]


def check_pt2(data: bytes, label: str) -> CheckedArchive:
    """Check a .pt2's bytes (see the module docstring); raise UnsafeArchive naming the first problem."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise UnsafeArchive(f"{label} is larger than {MAX_ARCHIVE_BYTES >> 30} GiB")
    entries = read_zip(data, label)
    roots = {name.split("/", 1)[0] for name in entries}
    if len(roots) != 1 or any("/" not in name for name in entries):
        raise UnsafeArchive(f"{label} is not a torch.export archive: its entries do not share one root folder")
    root = roots.pop()
    relative = {name[len(root) + 1:]: payload for name, payload in entries.items()}
    if "archive_version" not in relative:
        raise UnsafeArchive(f"{label} is not a torch.export archive of a supported version (no archive_version; "
                            "older torch.export files are not read)")
    for name in relative:
        if not ENTRY.fullmatch(name):
            raise UnsafeArchive(f"{label} holds {name!r}, which a plain torch.export program does not have "
                                "(compiled code, custom objects and legacy layouts are refused)")
    models = [name for name in relative if name.startswith("models/")]
    if not models:
        raise UnsafeArchive(f"{label} holds no exported program (models/*.json)")
    for name in models:
        check_program_json(relative[name], f"{label}: {name}")
    for kind in ("weights", "constants"):
        for name in [n for n in relative if n.startswith(f"data/{kind}/") and n.endswith("_config.json")]:
            check_payload_config(relative, name, kind, label)
    for name in relative:
        if name.startswith("data/sample_inputs/"):
            check_torch_pickle(relative[name], f"{label}: {name}")
    extra = {}
    for name, payload in relative.items():
        if name.startswith("extra/"):
            try:
                extra[name[len("extra/"):]] = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise UnsafeArchive(f"{label}: {name} is not UTF-8 text") from None
    return CheckedArchive(repack(entries), extra)
