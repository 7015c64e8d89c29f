"""Atomic file writes and file digests: a result file is either complete or absent."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from evaluator.errors import EvaluatorError


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest(data: Any) -> str:
    """Hex sha256 of `data` as sorted JSON (values JSON cannot hold as their str): a cache key of plain values."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def json_text(value: Any, indent: int = 2, level: int = 0) -> str:
    """JSON as `json.dumps(value, indent=2)` writes it, except that a list of numbers, booleans, strings or nulls
    stays on one line: per-sample lists (1,000 indices, distances) take one line each, not one line per sample.
    Ends without a newline; parses back to what json.dumps(value) gives."""
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(key))}: {json_text(item, indent, level + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)) and value:
        if not any(isinstance(item, (dict, list, tuple)) for item in value):
            return json.dumps(list(value))
        return "[\n" + ",\n".join(f"{inner}{json_text(item, indent, level + 1)}" for item in value) + "\n" + pad + "]"
    return json.dumps(value)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


MAX_NAME_LENGTH = 200


def check_name(name: str, what: str) -> str:
    """A plain file name chosen by a user or read from a file: no folders, no '..', no control characters.

    Outputs are written as OUT/NAME...; a name with a separator or '..' would put them beside OUT instead."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("..")
            or any(ord(char) < 32 or ord(char) == 127 for char in name) or len(name) > MAX_NAME_LENGTH):
        raise EvaluatorError(f"{what} {name!r} must be a plain file name (no folders, no '..', at most "
                             f"{MAX_NAME_LENGTH} characters)")
    return name


def stem_file(stem: Path, suffix: str) -> Path:
    """The file STEM + `suffix` (".pt2"): a stem's own dots (NAME_cr2.5) are part of its name, not a suffix to replace."""
    return Path(stem).parent / f"{Path(stem).name}{suffix}"


def is_inside(path: Path, folder: Path) -> bool:
    """Whether `path`, with every symbolic link followed, lies inside `folder` (also resolved)."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


def file_beside(anchor: Path, name: str, what: str) -> Path:
    """The file `name` in the folder of `anchor`, as named by `anchor`'s metadata: a plain name that, links followed,
    stays inside that folder (metadata cannot point a tool at /etc/passwd or ../other)."""
    check_name(name, what)
    candidate = Path(anchor).parent / name
    if not is_inside(candidate, Path(anchor).parent):
        raise EvaluatorError(f"{what} {name!r} named by {Path(anchor).name} leads outside its folder")
    return candidate


MAX_TEXT_BYTES = 1 << 20


def read_text_file(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a small regular file a user names (a sweep config, a policy): a folder, a device, a FIFO or
    a file over `limit` bytes is refused before anything is read."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise EvaluatorError(f"{what} not found: {path}") from None
    except OSError as error:
        raise EvaluatorError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise EvaluatorError(f"{what} {path} is a folder: expected a TOML file")
    if not stat.S_ISREG(info.st_mode):
        raise EvaluatorError(f"{what} {path} is not a regular file: expected a TOML file")
    if info.st_size > limit:
        raise EvaluatorError(f"{what} {path} is {info.st_size:,} bytes: a TOML file of at most {limit:,} bytes is expected")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise EvaluatorError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > limit:
        raise EvaluatorError(f"{what} {path} grew past {limit:,} bytes while it was read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise EvaluatorError(f"{what} {path} is not UTF-8 text: expected a TOML file") from None


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is missing, unreadable, partial or not an object (a cache file
    that is not whole means: do the step again)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None
