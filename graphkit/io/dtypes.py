"""TensorFlow DataType enum <-> numpy dtypes and user-facing names."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from graphkit.errors import GraphkitError

# enum value -> (user-facing name as in tf.dtypes, numpy dtype or None when numpy has no equivalent)
_TABLE: dict[int, tuple[str, np.dtype | None]] = {
    1: ("float32", np.dtype(np.float32)),
    2: ("float64", np.dtype(np.float64)),
    3: ("int32", np.dtype(np.int32)),
    4: ("uint8", np.dtype(np.uint8)),
    5: ("int16", np.dtype(np.int16)),
    6: ("int8", np.dtype(np.int8)),
    7: ("string", np.dtype(object)),
    8: ("complex64", np.dtype(np.complex64)),
    9: ("int64", np.dtype(np.int64)),
    10: ("bool", np.dtype(np.bool_)),
    11: ("qint8", np.dtype(np.int8)),
    12: ("quint8", np.dtype(np.uint8)),
    13: ("qint32", np.dtype(np.int32)),
    14: ("bfloat16", np.dtype(ml_dtypes.bfloat16)),
    15: ("qint16", np.dtype(np.int16)),
    16: ("quint16", np.dtype(np.uint16)),
    17: ("uint16", np.dtype(np.uint16)),
    18: ("complex128", np.dtype(np.complex128)),
    19: ("float16", np.dtype(np.float16)),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", np.dtype(np.uint32)),
    23: ("uint64", np.dtype(np.uint64)),
    24: ("float8_e5m2", np.dtype(ml_dtypes.float8_e5m2)),
    25: ("float8_e4m3fn", np.dtype(ml_dtypes.float8_e4m3fn)),
    26: ("float8_e4m3fnuz", np.dtype(ml_dtypes.float8_e4m3fnuz)),
    27: ("float8_e4m3b11fnuz", np.dtype(ml_dtypes.float8_e4m3b11fnuz)),
    28: ("float8_e5m2fnuz", np.dtype(ml_dtypes.float8_e5m2fnuz)),
    29: ("int4", np.dtype(ml_dtypes.int4)),
    30: ("uint4", np.dtype(ml_dtypes.uint4)),
}
_BY_NAME = {name: code for code, (name, _) in _TABLE.items() if not name.startswith("q")}
_BY_NAME.update({"float": 1, "double": 2, "half": 19, "str": 7, "bytes": 7})
REF_OFFSET = 100
DT_FLOAT = 1
DT_INT32 = 3
DT_UINT8 = 4
DT_STRING = 7
DT_INT64 = 9
DT_BOOL = 10
DT_RESOURCE = 20
DT_VARIANT = 21


def base(code: int) -> int:
    """The dtype a ref type (``DT_FLOAT_REF``) refers to."""
    return code - REF_OFFSET if code > REF_OFFSET else code


def name(code: int) -> str:
    """User-facing name: ``float32``, ``int64``, ``float32_ref``."""
    entry = _TABLE.get(base(code))
    text = entry[0] if entry else f"dtype_{base(code)}"
    return text + "_ref" if code > REF_OFFSET else text


def to_numpy(code: int) -> np.dtype:
    entry = _TABLE.get(base(code))
    if entry is None or entry[1] is None:
        raise GraphkitError(f"tensors of dtype {name(code)} have no numpy equivalent")
    return entry[1]


def from_name(text: str) -> int:
    """Parse a user-given dtype name (``float32``, ``float``, ``uint8``...)."""
    code = _BY_NAME.get(text.strip().lower())
    if code is None:
        known = ", ".join(sorted(n for n in _BY_NAME if n[0].isalpha()))
        raise GraphkitError(f"unknown dtype '{text}'; use one of: {known}")
    return code


def from_numpy(dtype: np.dtype) -> int:
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return DT_STRING
    for code, (text, np_dtype) in _TABLE.items():
        if np_dtype == dtype and not text.startswith("q"):
            return code
    raise GraphkitError(f"numpy dtype {dtype} has no TensorFlow equivalent")
