"""TensorFlow DataType enum <-> numpy dtypes and user-facing names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphkit.errors import GraphkitError

if TYPE_CHECKING:
    import numpy as np

# enum value -> user-facing name as in tf.dtypes
_NAMES: dict[int, str] = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    11: "qint8",
    12: "quint8",
    13: "qint32",
    14: "bfloat16",
    15: "qint16",
    16: "quint16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    20: "resource",
    21: "variant",
    22: "uint32",
    23: "uint64",
    24: "float8_e5m2",
    25: "float8_e4m3fn",
    26: "float8_e4m3fnuz",
    27: "float8_e4m3b11fnuz",
    28: "float8_e5m2fnuz",
    29: "int4",
    30: "uint4",
}
_NUMPY: dict[int, np.dtype] | None = None  # enum value -> numpy dtype, built on first use (importing numpy)
_ML_NAMES = {14: "bfloat16", 24: "float8_e5m2", 25: "float8_e4m3fn", 26: "float8_e4m3fnuz",
             27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz", 29: "int4", 30: "uint4"}
_ML_LOADED = False  # ml_dtypes (0.5-0.8 s to import) joins the table only when one of its dtypes is met


def _numpy_table(with_ml_dtypes: bool = False) -> dict[int, np.dtype]:
    global _NUMPY, _ML_LOADED
    if _NUMPY is None:
        import numpy as np

        types = {
            1: np.float32,
            2: np.float64,
            3: np.int32,
            4: np.uint8,
            5: np.int16,
            6: np.int8,
            7: object,
            8: np.complex64,
            9: np.int64,
            10: np.bool_,
            11: np.int8,
            12: np.uint8,
            13: np.int32,
            15: np.int16,
            16: np.uint16,
            17: np.uint16,
            18: np.complex128,
            19: np.float16,
            22: np.uint32,
            23: np.uint64,
        }
        _NUMPY = {code: np.dtype(t) for code, t in types.items()}
    if with_ml_dtypes and not _ML_LOADED:
        import ml_dtypes
        import numpy as np

        _NUMPY.update({code: np.dtype(getattr(ml_dtypes, attr)) for code, attr in _ML_NAMES.items()})
        _ML_LOADED = True
    return _NUMPY


# bytes per element in tensor_content, for the fixed-size types (no numpy: the fast path's checks use it)
ITEMSIZE = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 11: 1, 12: 1, 13: 4, 14: 2, 15: 2, 16: 2,
            17: 2, 18: 16, 19: 2, 22: 4, 23: 8, 24: 1, 25: 1, 26: 1, 27: 1, 28: 1}

_BY_NAME = {name: code for code, name in _NAMES.items() if not name.startswith("q")}
_BY_NAME.update({"float": 1, "double": 2, "half": 19, "str": 7, "bytes": 7})
REF_OFFSET = 100
DT_FLOAT = 1
DT_DOUBLE = 2
DT_INT32 = 3
DT_UINT8 = 4
DT_STRING = 7
DT_COMPLEX64 = 8
DT_INT64 = 9
DT_BOOL = 10
DT_BFLOAT16 = 14
DT_COMPLEX128 = 18
DT_HALF = 19
DT_RESOURCE = 20
DT_VARIANT = 21
NO_FIXED_SIZE = frozenset({DT_STRING, DT_RESOURCE, DT_VARIANT})  # no bytes-per-element: sizes are unknown


def base(code: int) -> int:
    """The dtype a ref type (``DT_FLOAT_REF``) refers to."""
    return code - REF_OFFSET if code > REF_OFFSET else code


def name(code: int) -> str:
    """User-facing name: ``float32``, ``int64``, ``float32_ref``."""
    text = _NAMES.get(base(code), f"dtype_{base(code)}")
    return text + "_ref" if code > REF_OFFSET else text


def to_numpy(code: int) -> np.dtype:
    np_dtype = _numpy_table(base(code) in _ML_NAMES).get(base(code))
    if np_dtype is None:
        raise GraphkitError(f"tensors of dtype {name(code)} have no numpy equivalent")
    return np_dtype


def from_name(text: str) -> int:
    """Parse a user-given dtype name (``float32``, ``float``, ``uint8``...)."""
    code = _BY_NAME.get(text.strip().lower())
    if code is None:
        known = ", ".join(sorted(n for n in _BY_NAME if n[0].isalpha()))
        raise GraphkitError(f"unknown dtype '{text}'; use one of: {known}")
    return code


def from_numpy(dtype: np.dtype) -> int:
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return DT_STRING
    for code, np_dtype in _numpy_table(dtype.kind == "V" or dtype.name in _ML_NAMES.values()).items():
        if np_dtype == dtype and not _NAMES[code].startswith("q"):
            return code
    raise GraphkitError(f"numpy dtype {dtype} has no TensorFlow equivalent")
