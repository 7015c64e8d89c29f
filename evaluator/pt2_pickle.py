"""The pickles inside a .pt2 (`torch.save` files): a shadow unpickler whose globals resolve to inert stand-ins, so
each global a pickle asks for is checked against ALLOWED_GLOBALS and nothing real is built."""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import zipfile
from typing import Any

from evaluator.pt2_zip import UnsafeArchive, read_zip

ALLOWED_GLOBALS = frozenset({
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    *(("torch", f"{kind}Storage") for kind in (
        "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "ComplexFloat",
        "ComplexDouble", "Untyped")),
    *(("torch", dtype) for dtype in (
        "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
        "complex64", "complex128")),
})


def check_torch_pickle(payload: bytes, label: str) -> None:
    """A `torch.save` file (zip layout): every .pkl inside must only ask for ALLOWED_GLOBALS."""
    if not zipfile.is_zipfile(io.BytesIO(payload)):
        raise UnsafeArchive(f"{label} is a legacy (non-zip) torch serialization, which is not read")
    inner = read_zip(payload, label)
    pickles = [name for name in inner if name.endswith(".pkl")]
    if not pickles:
        raise UnsafeArchive(f"{label} holds no pickle")
    for name in pickles:
        scan_pickle(inner[name], f"{label} ({name.rsplit('/', 1)[-1]})")


class _Inert:
    """What every allowed global resolves to in the shadow unpickling: accepts any arguments, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _ShadowUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))  # Python 2 names, as
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)  # pickle maps them for protocols below 3
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeArchive(f"refers to {module}.{name}")
        return type(name, (_Inert,), {})

    def persistent_load(self, pid: Any) -> Any:
        return _Inert()


def scan_pickle(payload: bytes, label: str) -> None:
    """Unpickle with inert stand-ins: raise UnsafeArchive naming the first global outside ALLOWED_GLOBALS."""
    try:
        _ShadowUnpickler(io.BytesIO(payload)).load()
    except UnsafeArchive as error:
        raise UnsafeArchive(f"{label}: its pickle {error}, which is not a tensor-rebuilding global: refused") from None
    except Exception as error:  # a malformed pickle fails in the unpickler's own ways
        raise UnsafeArchive(f"{label}: its pickle is malformed ({type(error).__name__})") from None
