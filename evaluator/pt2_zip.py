"""The zip layer of a .pt2: the size and entry limits, UnsafeArchive (raised by every .pt2 check), reading a zip's
entries without duplicates or bombs, and re-packing exactly the entries that were checked."""

from __future__ import annotations

import io
import os
import zipfile

from evaluator.errors import EvaluatorError

MAX_ARCHIVE_BYTES = 4 << 30  # the .pt2 file itself
MAX_UNPACKED_BYTES = 8 << 30  # all entries together, uncompressed (a zip bomb stops here)
MAX_PACKING_RATIO = 4  # unpacked / packed bytes: torch.export.save stores entries uncompressed
MAX_ENTRIES = 100_000


class UnsafeArchive(EvaluatorError):
    """A .pt2 that could run code, or that is not the kind of program the evaluator reads."""


def check_zip_file(path: str) -> None:
    """Before a .pt2 is read into memory: it is a zip whose entries make up the file (a zip may carry any data before
    its first entry; gigabytes of it would be read for nothing)."""
    try:
        with zipfile.ZipFile(path) as archive:
            stored = sum(info.compress_size + len(info.filename) + len(info.extra) + 128 for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as error:
        raise UnsafeArchive(f"{path} is not a readable zip archive ({type(error).__name__}: {error})") from None
    size = os.path.getsize(path)
    if size > 2 * stored + (1 << 20):
        raise UnsafeArchive(f"{path} has {size:,} bytes, but its zip entries hold only {stored:,}: not a torch.export "
                            "archive")


def read_zip(data: bytes, label: str) -> dict[str, bytes]:
    """Every entry of a zip, after bounding its count and unpacked size; duplicate names are refused (two readers
    could pick different ones)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(infos) > MAX_ENTRIES:
                raise UnsafeArchive(f"{label} has {len(infos)} entries (at most {MAX_ENTRIES})")
            if len(set(names)) != len(names):
                raise UnsafeArchive(f"{label} names an entry twice")
            unpacked = sum(info.file_size for info in infos)
            if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_PACKING_RATIO * len(data) + (1 << 20):
                raise UnsafeArchive(f"{label} unpacks to {unpacked:,} bytes from {len(data):,}: torch stores its entries "
                                    "uncompressed, so this is not one of its archives (or it is a zip bomb)")
            return {info.filename: archive.read(info) for info in infos if not info.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError, OSError) as error:
        raise UnsafeArchive(f"{label} is not a readable zip archive ({type(error).__name__}: {error})") from None


def repack(entries: dict[str, bytes]) -> bytes:
    """A fresh, uncompressed zip of exactly these entries: what torch reads is what was checked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, payload in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), payload)
    return buffer.getvalue()
