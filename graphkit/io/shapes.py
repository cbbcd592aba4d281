"""TensorShapeProto <-> tuples (``-1`` an unknown dimension, None an unknown rank); no numpy."""

from __future__ import annotations

from graphkit.errors import GraphkitError
from graphkit.proto import tensor_shape_pb2


def shape_of(proto: tensor_shape_pb2.TensorShapeProto) -> tuple[int, ...] | None:
    """Dimensions of a shape proto (-1 for unknown dims); None for unknown rank."""
    if proto.unknown_rank:
        return None
    return tuple(int(d.size) for d in proto.dim)


def shape_proto(shape: tuple[int, ...] | list[int] | None) -> tensor_shape_pb2.TensorShapeProto:
    proto = tensor_shape_pb2.TensorShapeProto()
    if shape is None:
        proto.unknown_rank = True
    else:
        for size in shape:
            proto.dim.add().size = int(size)
    return proto


def format_shape(shape: tuple[int, ...] | list[int] | None) -> str:
    if shape is None:
        return "<unknown>"
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def element_count(shape: tuple[int, ...]) -> int:
    """The number of elements of a tensor shape, refusing negative dimensions and counts past int64."""
    if any(d < 0 for d in shape):
        raise GraphkitError(f"the tensor's shape {format_shape(shape)} has a negative dimension")
    count = 1
    for d in shape:
        count *= d
    if count >= 1 << 63:
        raise GraphkitError(f"the tensor's shape {format_shape(shape)} has more elements than int64 counts")
    return count
