"""Caffe models, read without Caffe: the deploy prototxt (text NetParameter) for the structure, the
``.caffemodel`` (binary NetParameter) for the weights, matched to layers by name as Caffe does.

Weights are read straight from the file's bytes: the caffemodel is mmapped and each blob's packed floats
become a numpy view of the mapping (no protobuf parse of the repeated floats, no copy).
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf import message, text_format

from graphkit.errors import GraphkitError
from graphkit.io.wire import FIXED32, FIXED64, LEN, WireError, iter_fields, read_varint
from graphkit.proto import caffe_pb2

# V1 enum layer types -> today's type strings (upgrade_proto.cpp UpgradeV1LayerType)
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

LayerParams = caffe_pb2.LayerParameter | caffe_pb2.V1LayerParameter


@dataclass
class CaffeLayer:
    """One layer of the deploy net: its type as a string (V1 enums upgraded), blobs from the caffemodel."""

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    params: LayerParams
    blobs: list[np.ndarray] | None = field(default_factory=list)  # None: shapes only (no caffemodel)
    spans: list[tuple[int, int]] = field(default_factory=list)  # where the blobs' bytes are in the caffemodel


@dataclass
class CaffeNet:
    name: str
    inputs: dict[str, tuple[int, ...]]  # input blob -> shape (N, C, H, W, ...)
    layers: list[CaffeLayer]
    prototxt: Path
    caffemodel: Path | None
    weight_bytes: int = 0
    unused_weights: list[str] = field(default_factory=list)  # caffemodel layers with blobs the deploy net lacks
    mapping: mmap.mmap | None = None

    def release(self, layer: CaffeLayer) -> None:
        """Drop the layer's weight pages from memory (they were read; the file keeps them)."""
        if self.mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        for start, length in layer.spans:
            first = start // page * page
            end = -(-(start + length) // page) * page
            self.mapping.madvise(mmap.MADV_DONTNEED, first, min(end, len(self.mapping)) - first)


def is_caffe_prototxt(path: str | os.PathLike[str]) -> bool:
    """A text file whose first field is a Caffe NetParameter's (``layer``, ``input``...), not TF's."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in (".prototxt", ".pbtxt", ".txt"):
        return False
    with open(p, "rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace")
    for line in head.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key = line.split(":", 1)[0].split("{", 1)[0].strip()
            if key == "name":
                continue
            return key in ("layer", "layers", "input", "input_dim", "input_shape", "force_backward", "state")
    return False


def read_prototxt(path: str | os.PathLike[str]) -> caffe_pb2.NetParameter:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphkitError(f"cannot read: {exc.strerror}", p) from None
    except UnicodeDecodeError as exc:
        raise GraphkitError(f"not a Caffe prototxt: not UTF-8 text (byte {exc.start})", p) from None
    net = caffe_pb2.NetParameter()
    try:
        text_format.Parse(text, net, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise GraphkitError(f"not a Caffe prototxt (text NetParameter): {exc}", p) from None
    if not net.layer and not net.layers:
        raise GraphkitError("no layers in this prototxt (is it a solver or a different file?)", p)
    return net


_NO_TOP_OK = frozenset({"Silence"})  # layers Caffe lets end a net without a top blob


def _net_problems(net: caffe_pb2.NetParameter, declared: list[str], layers: list[CaffeLayer]) -> list[str]:
    """What Caffe's own checks (net.cpp, conv/pooling layer setup) refuse, layer by layer, all at once."""
    problems = []
    if declared and not net.input_shape and net.input_dim and len(net.input_dim) != 4 * len(declared):
        problems.append(f"input_dim gives {len(net.input_dim)} values for {len(declared)} input(s); Caffe takes "
                        "4 per input (N, C, H, W)")
    for layer in layers:
        where = f"layer '{layer.name}' ({layer.type})"
        if not layer.tops and layer.bottoms and layer.type not in _NO_TOP_OK and not layer.type.endswith("Loss"):
            problems.append(f"{where} has no top blob")
        if layer.type in ("Convolution", "Deconvolution") and layer.params.HasField("convolution_param"):
            conv = layer.params.convolution_param
            values = [("stride", v) for v in _strides(conv)] + [("dilation", v) for v in conv.dilation]
            values += [("group", conv.group)] if conv.HasField("group") else []
            problems += [f"{where}: {name} {value} (must be at least 1)"
                         for name, value in dict.fromkeys(values) if value < 1]
        if layer.type == "Pooling" and layer.params.HasField("pooling_param"):
            pool = layer.params.pooling_param
            if not pool.global_pooling and any(v < 1 for v in _strides(pool)):
                problems.append(f"{where}: stride 0 (must be at least 1)")
    return problems


def _strides(param: caffe_pb2.ConvolutionParameter | caffe_pb2.PoolingParameter) -> list[int]:
    return [int(v) for v in param.stride] + [int(getattr(param, f)) for f in ("stride_h", "stride_w")
                                              if param.HasField(f)]


def read_caffe(prototxt: str | os.PathLike[str], caffemodel: str | os.PathLike[str] | None = None,
               input_shapes: dict[str, tuple[int, ...]] | None = None) -> CaffeNet:
    """The deploy net with its weights. ``input_shapes`` overrides the declared input shapes."""
    proto_path = Path(prototxt)
    net = read_prototxt(proto_path)
    layers: list[CaffeLayer] = []
    inputs: dict[str, tuple[int, ...]] = {}
    declared = list(net.input)
    if declared:
        if net.input_shape:
            shapes = [tuple(int(d) for d in s.dim) for s in net.input_shape]
        else:
            dims = [int(d) for d in net.input_dim]
            shapes = [tuple(dims[4 * i:4 * i + 4]) for i in range(len(declared))]
        for name, shape in zip(declared, shapes, strict=False):
            inputs[name] = shape
    for v2 in net.layer:
        layers.append(CaffeLayer(v2.name, v2.type, list(v2.bottom), list(v2.top), v2))
    for v1 in net.layers:
        kind = caffe_pb2.V1LayerParameter.LayerType.Name(v1.type)
        layers.append(CaffeLayer(v1.name, V1_TYPES.get(kind, kind), list(v1.bottom), list(v1.top), v1))
    for layer in layers:
        if layer.type == "Input" and isinstance(layer.params, caffe_pb2.LayerParameter):
            shapes = [tuple(int(d) for d in s.dim) for s in layer.params.input_param.shape]
            for i, top in enumerate(layer.tops):
                if shapes:
                    inputs[top] = shapes[min(i, len(shapes) - 1)]
    for name, shape in (input_shapes or {}).items():
        if name not in inputs:
            raise GraphkitError(f"--input-shape names '{name}', which is not an input of this net "
                                f"(inputs: {', '.join(inputs) or 'none'})", proto_path)
        inputs[name] = tuple(shape)
    problems = _net_problems(net, declared, layers)
    if problems:
        raise GraphkitError("Caffe would refuse this net: " + "; ".join(problems), proto_path)
    result = CaffeNet(net.name, inputs, layers, proto_path, Path(caffemodel) if caffemodel else None)
    if caffemodel is None:
        for layer in layers:
            layer.blobs = None
        return result
    weights, result.mapping = _read_caffemodel(caffemodel)
    by_name = {layer.name: layer for layer in layers}
    for name, (blobs, spans) in weights.items():
        if name in by_name:
            by_name[name].blobs, by_name[name].spans = blobs, spans
            result.weight_bytes += sum(b.nbytes for b in blobs)
        elif blobs:
            result.unused_weights.append(name)
    return result


def read_caffemodel(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """layer name -> its blobs (float32 views of the mmapped file, or float64 copies for double_data), in
    Caffe's shapes (legacy 4-D num/channels/height/width kept as written)."""
    return {name: blobs for name, (blobs, _) in _read_caffemodel(path)[0].items()}


def _read_caffemodel(path: str | os.PathLike[str]) -> tuple[dict[str, tuple[list[np.ndarray], list[tuple[int, int]]]],
                                                             mmap.mmap]:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise GraphkitError("empty caffemodel", p)
            mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise GraphkitError(f"cannot read: {exc.strerror}", p) from None
    buf = memoryview(mapping)
    out: dict[str, tuple[list[np.ndarray], list[tuple[int, int]]]] = {}
    try:
        for number, wire, _, start, end in iter_fields(buf, 0, len(buf)):
            if wire != LEN or number not in (100, 2):  # layer (V2) / layers (V1)
                continue
            name_field, blob_field = (1, 7) if number == 100 else (4, 6)
            name, blobs, spans = "", [], []
            for n, w, _, s, e in iter_fields(buf, start, end):
                if n == name_field and w == LEN:
                    name = bytes(buf[s:e]).decode("utf-8", errors="replace")
                elif n == blob_field and w == LEN:
                    blobs.append(_blob(buf, s, e))
                    spans.append((s, e - s))
            if name in out and not blobs:
                continue
            out[name] = (blobs, spans)
    except (WireError, ValueError, message.DecodeError) as exc:
        raise GraphkitError(f"not a valid caffemodel (binary NetParameter): {exc}", p) from None
    return out, mapping


def _blob(buf: memoryview, start: int, end: int) -> np.ndarray:
    legacy = [0, 0, 0, 0]
    shape: list[int] | None = None
    data: np.ndarray | None = None
    floats: list[float] = []
    for n, w, _, s, e in iter_fields(buf, start, end):
        if n in (1, 2, 3, 4) and w == 0:
            legacy[n - 1] = read_varint(buf, s)[0]
        elif n == 7 and w == LEN:
            shape = [int(d) for d in caffe_pb2.BlobShape.FromString(bytes(buf[s:e])).dim]
        elif n == 5 and w == LEN:  # packed float32
            data = np.frombuffer(buf, dtype="<f4", count=(e - s) // 4, offset=s)
        elif n == 5 and w == FIXED32:  # unpacked float32 (old writers)
            floats.append(float(np.frombuffer(buf, dtype="<f4", count=1, offset=s)[0]))
        elif n == 8 and w == LEN:
            data = np.frombuffer(buf, dtype="<f8", count=(e - s) // 8, offset=s).astype(np.float32)
        elif n == 8 and w == FIXED64:
            floats.append(float(np.frombuffer(buf, dtype="<f8", count=1, offset=s)[0]))
    if data is None:
        data = np.asarray(floats, dtype=np.float32)
    dims = shape if shape is not None else ([d for d in legacy] if any(legacy) else [data.size])
    if int(np.prod(dims, dtype=np.int64)) != data.size:
        raise ValueError(f"a blob of shape {dims} holds {data.size} values")
    return data.reshape(dims)


def find_caffemodel(prototxt: str) -> str | None:
    """The caffemodel beside a prototxt: same stem, or the only ``.caffemodel`` whose name starts with it."""
    p = Path(prototxt)
    same = p.with_suffix(".caffemodel")
    if same.is_file():
        return str(same)
    matches = sorted(p.parent.glob(f"{p.stem}*.caffemodel"))
    return str(matches[0]) if len(matches) == 1 else None
