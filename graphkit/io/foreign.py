"""Model files that are not TensorFlow graphs, told apart by their bytes so that no command calls them
"truncated or corrupt": ONNX and TFLite (which graphkit writes, inspects and runs), Keras ``.keras`` and
HDF5 ``.h5`` files (which a TF2 user exports first), and the other files users pass by mistake."""

from __future__ import annotations

import os
from pathlib import Path

from graphkit.io.wire import FIXED32, FIXED64, LEN, VARINT, WireError, read_varint

ONNX = "onnx"
TFLITE = "tflite"
KERAS = "keras"
HDF5 = "hdf5"

_KERAS_HINT = ("a Keras model: export a SavedModel with model.export('DIR') (Keras 3) or "
               "tf.saved_model.save(model, 'DIR'), then pass DIR")
HINTS = {
    ONNX: "an ONNX model, not a TensorFlow graph; graphkit inspects, runs and compares ONNX models, but edits "
          "TensorFlow graphs only",
    TFLITE: "a TFLite model, not a TensorFlow graph; graphkit inspects, runs and compares TFLite models, but "
            "edits TensorFlow graphs only",
    KERAS: _KERAS_HINT,
    HDF5: "an HDF5 file (a Keras .h5 model or weights); " + _KERAS_HINT,
}


def foreign_format(path: str | os.PathLike[str]) -> str | None:
    """ONNX, TFLITE, KERAS or HDF5 when ``path`` is such a file, else None (a TF file, or unknown)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head[4:8] == b"TFL3":  # the flatbuffer file identifier of TFLite's schema
        return TFLITE
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return HDF5
    if head.startswith(b"PK\x03\x04") and (p.suffix == ".keras" or b"config.json" in head
                                           or b"metadata.json" in head):
        return KERAS
    if p.suffix == ".onnx" or _looks_like_onnx(head):
        return ONNX
    return None


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto starts with ir_version (1, varint) and has graph (7) or opset_import (8) fields;
    a SavedModel, the one TF file with a varint field 1, has neither. Only the tags are read: a field may end
    past the 4 KiB head."""
    seen: set[tuple[int, int]] = set()
    at = 0
    try:
        while at < len(head) and len(seen) < 16:
            tag, at = read_varint(head, at)
            number, wire_type = tag >> 3, tag & 7
            seen.add((number, wire_type))
            if wire_type == VARINT:
                _, at = read_varint(head, at)
            elif wire_type == LEN:
                length, at = read_varint(head, at)
                at += length
            elif wire_type in (FIXED64, FIXED32):
                at += 8 if wire_type == FIXED64 else 4
            else:
                break
    except WireError:
        pass  # the head ends inside a varint: what was read decides
    return (1, VARINT) in seen and ((7, LEN) in seen or (8, LEN) in seen)
