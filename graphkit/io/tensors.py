"""TensorProto <-> numpy, exact to TensorFlow's tensor_util (bit for bit)."""

from __future__ import annotations

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.shapes import element_count, format_shape, shape_of, shape_proto
from graphkit.proto import node_def_pb2, tensor_pb2

__all__ = ["format_shape", "from_numpy", "shape_of", "shape_proto", "to_numpy"]

# dtype -> the repeated field TensorFlow stores values in when tensor_content is empty
_FIELD = {
    1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val", 6: "int_val", 7: "string_val",
    8: "scomplex_val", 9: "int64_val", 10: "bool_val", 11: "int_val", 12: "int_val", 13: "int_val",
    14: "half_val", 15: "int_val", 16: "int_val", 17: "int_val", 18: "dcomplex_val", 19: "half_val",
    22: "uint32_val", 23: "uint64_val", 24: "float8_val", 25: "float8_val", 29: "int_val", 30: "int_val",
}


MAX_DECODE_BYTES = 4 << 30  # a value larger than this is refused, not allocated (a splat can claim any shape)


def to_numpy(tensor: tensor_pb2.TensorProto, content: bytes | memoryview | None = None) -> np.ndarray:
    """Decode a TensorProto; ``content`` replaces ``tensor_content`` when that is kept outside the proto.
    What is wrong with the tensor (a negative or overflowing shape, a value over ``MAX_DECODE_BYTES``) is said
    before anything is allocated."""
    code = dtypes.base(tensor.dtype)
    shape = shape_of(tensor.tensor_shape) or ()
    count = element_count(shape)
    np_dtype = dtypes.to_numpy(code)
    size = count * (np_dtype.itemsize if np_dtype != np.dtype(object) else 8)
    if size > MAX_DECODE_BYTES:
        raise GraphkitError(f"the {dtypes.name(code)} tensor of shape {format_shape(shape)} would take "
                            f"{size / (1 << 30):.1f} GiB decoded; graphkit decodes at most "
                            f"{MAX_DECODE_BYTES >> 30} GiB")
    raw = content if content is not None else tensor.tensor_content
    if code == dtypes.DT_STRING:
        values = list(tensor.string_val)
        arr = np.empty(count, dtype=object)
        if values:
            arr[: len(values)] = values
            arr[len(values):] = values[-1]
        else:
            arr[:] = b""
        return arr.reshape(shape)
    if len(raw):
        if len(raw) != count * np_dtype.itemsize:
            raise GraphkitError(
                f"tensor_content holds {len(raw)} bytes but shape {format_shape(shape)} of {dtypes.name(code)} "
                f"needs {count * np_dtype.itemsize}"
            )
        return np.frombuffer(raw, dtype=np_dtype).reshape(shape).copy()
    field = _FIELD.get(code)
    if field is None:
        raise GraphkitError(f"cannot decode a {dtypes.name(code)} tensor")
    values_list = list(getattr(tensor, field))
    if code in (dtypes.DT_COMPLEX64, dtypes.DT_COMPLEX128):  # complex: pairs of (real, imag)
        pairs = np.asarray(values_list, dtype=np.float64).reshape(-1, 2)
        vals = (pairs[:, 0] + 1j * pairs[:, 1]).astype(np_dtype)
    elif code in (dtypes.DT_BFLOAT16, dtypes.DT_HALF):  # bit patterns stored in an int32 list
        vals = np.asarray(values_list, dtype=np.uint16).view(np_dtype)
    elif field == "float8_val":
        vals = np.frombuffer(bytes(values_list[0]) if values_list else b"", dtype=np.uint8).view(np_dtype)
    else:
        vals = np.asarray(values_list).astype(np_dtype)
    if vals.size == count:
        return vals.reshape(shape)
    out = np.zeros(count, dtype=np_dtype)
    if vals.size:  # TensorFlow repeats the last value to fill the shape
        out[: vals.size] = vals[:count]
        out[vals.size:] = vals[-1]
    return out.reshape(shape)


def splat_scalar(tensor: tensor_pb2.TensorProto) -> np.ndarray | None:
    """The one value of a splat (a TensorProto storing one value for a shape of more elements), decoded
    alone -- never expanded; None for any other tensor."""
    from graphkit.io.graph import is_splat_tensor

    if not is_splat_tensor(tensor):
        return None
    one = tensor_pb2.TensorProto()
    one.CopyFrom(tensor)
    one.ClearField("tensor_shape")
    return to_numpy(one)


def from_numpy(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encode a numpy array as TensorFlow does (tensor_content for numeric types)."""
    array = np.asarray(array)
    code = dtypes.from_numpy(array.dtype)
    proto = tensor_pb2.TensorProto(tensor_shape=shape_proto(array.shape))
    proto.dtype = code  # type: ignore[assignment]
    if code == dtypes.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return proto


def const_node(name: str, value: np.ndarray) -> node_def_pb2.NodeDef:
    """A Const NodeDef holding ``value``."""
    tensor = from_numpy(np.asarray(value))
    node = node_def_pb2.NodeDef(name=name, op="Const")
    node.attr["dtype"].type = tensor.dtype
    node.attr["value"].tensor.CopyFrom(tensor)
    return node
