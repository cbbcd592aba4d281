"""``graphkit caffe2tf``: a Caffe deploy prototxt + caffemodel to a frozen TensorFlow GraphDef, TF-free.

The body is NHWC (TF's CPU kernels) with weights permuted at conversion time; ``layout="nchw"`` (default)
keeps Caffe's NCHW at the input and at 4-D outputs (one Transpose each), ``layout="nhwc"`` has none. The input
Placeholder is named after Caffe's input blob (batch dimension unknown); ``TOP:0`` holds the final value of
every output blob TOP. Layer handlers live in one registry keyed by layer type (``REGISTRY``); pass
``handlers={"MyLayer": fn}`` to convert a custom layer (``fn(builder, layer, inputs) -> outputs``, see
``graphkit.convert.caffe.common.Handler``). Everything that cannot be converted is reported at once, before
anything is written.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from graphkit.convert.caffe import elementwise, shape, spatial, ssd
from graphkit.convert.caffe.builder import NHWC, Builder, Tensor, identity_perm
from graphkit.convert.caffe.common import Handler, LayerError
from graphkit.convert.caffe.fold import fold_batch_norms
from graphkit.errors import GraphkitError, about
from graphkit.io import Graph, dtypes, save_graph
from graphkit.io.caffe import CaffeLayer, CaffeNet, read_caffe
from graphkit.io.checks import check_importable
from graphkit.io.graph import valid_node_name
from graphkit.io.save import Progress, Spill, check_output
from graphkit.proto import graph_pb2
from graphkit.runtime.difference import Check, Difference, as_check, difference, refuse_differences

REGISTRY: dict[str, Handler] = {**spatial.HANDLERS, **elementwise.HANDLERS, **shape.HANDLERS, **ssd.HANDLERS}
TRAINING_ONLY = frozenset({"Data", "ImageData", "HDF5Data", "HDF5Output", "MemoryData", "WindowData", "DummyData",
                           "AnnotatedData", "Accuracy", "Silence", "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss",
                           "InfogainLoss", "MultinomialLogisticLoss", "SigmoidCrossEntropyLoss", "ContrastiveLoss",
                           "MultiBoxLoss"})


Layout = Literal["nchw", "nhwc"]  # the TF graph's axis order: Caffe's, or TF's native


@dataclass
class CaffeReport:
    output_path: str
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    layers_converted: int = 0
    dropped: list[str] = field(default_factory=list)  # training-only layers left out
    weight_bytes: int = 0
    bytes_written: int = 0
    nodes: int = 0
    verified: list[Difference] = field(default_factory=list)  # per output, with verify=True
    folded: list[str] = field(default_factory=list)  # BatchNorm/Scale layers folded into the layer before


def caffe2tf(
    prototxt: str | os.PathLike[str],
    caffemodel: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    layout: Layout = "nchw",
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    outputs: list[str] | None = None,
    handlers: dict[str, Handler] | None = None,
    text: bool | None = None,
    progress: Progress | None = None,
    verify: bool | Check = False,
) -> CaffeReport:
    """Convert and write ``out``; see the module docstring. ``outputs`` (blob names) cuts the net there.

    ``verify``: run the Caffe model in OpenCV and the result in TensorFlow on the same input (the Check's
    for the input blob, else seeded uniform in [-1, 1]) and compare every output (``|tf - opencv| <= atol +
    rtol * |opencv|``, the rule of every graphkit check); an error over it, the output removed."""
    check = as_check(verify)
    if layout not in ("nchw", "nhwc"):
        raise GraphkitError(f"layout must be nchw or nhwc, not '{layout}'")
    with about(prototxt):  # every error names a file (a layer's blob mismatch names the net)
        net = read_caffe(prototxt, caffemodel, input_shapes)
        files = [net.prototxt] + ([net.caffemodel] if net.caffemodel else [])
        check_output(out, files)
        with Spill(os.path.dirname(os.path.abspath(out))) as spill:
            b = Builder(spill)
            graph, report = convert_net(net, layout=layout, outputs=outputs, handlers=handlers, builder=b)
            check_importable(graph, prototxt, "the converted graph")
            report.output_path = os.fspath(out)
            report.bytes_written = save_graph(Graph(graph, dict(b.external)), out, inputs=files, text=text,
                                              progress=progress)
        if check is not None:
            _verify(net, out, report, layout, check)
        return report


def _verify(net: CaffeNet, out: str | os.PathLike[str], report: CaffeReport, layout: Layout, check: Check) -> None:
    import numpy as np

    from graphkit import runtime
    from graphkit.io import load
    from graphkit.io.save import materialize

    if net.caffemodel is None or len(net.inputs) != 1:
        raise GraphkitError("--verify needs the caffemodel and a net with one input", net.prototxt)
    (blob_name, shape), = net.inputs.items()
    name = report.inputs[0]["name"]
    given = (check.inputs or {}).get(blob_name, (check.inputs or {}).get(name))
    x = np.asarray(given, np.float32) if given is not None else np.random.default_rng(0).uniform(
        -1, 1, shape).astype(np.float32)
    outputs = [o["name"] for o in report.outputs]
    want = runtime.run_caffe_opencv(str(net.prototxt), str(net.caffemodel), x, [o["blob"] for o in report.outputs])
    model = load(out)
    assert model.graph is not None
    feed = x.transpose(0, 2, 3, 1) if layout == "nhwc" and x.ndim == 4 else x
    got = runtime.run_graph_def(materialize(model.graph).SerializeToString(), {f"{name}:0": feed}, outputs)
    for o, g, w in zip(outputs, got, want, strict=True):
        if layout == "nhwc" and w.ndim == 4:
            w = w.transpose(0, 2, 3, 1)
        w = w.reshape(g.shape) if w.size == g.size else w
        scale = float(np.abs(w).max()) if w.size else 0.0
        diff = difference(o, w, o, g, check.rtol, check.atol)
        diff.max_rel_to_max = (diff.max_abs or 0.0) / max(scale, 1e-12)
        report.verified.append(diff)
    if not all(d.ok for d in report.verified):
        os.unlink(out)  # written before the check (the weights stream through it); a failed graph is not left
        refuse_differences(report.verified, "the TF graph differs from OpenCV's Caffe", os.fspath(out), check.rtol,
                           check.atol, "the output was removed")


def convert_net(net: CaffeNet, *, layout: Layout = "nchw", outputs: list[str] | None = None,
                handlers: dict[str, Handler] | None = None, builder: Builder | None = None,
                fold: bool = True) -> tuple[graph_pb2.GraphDef, CaffeReport]:
    """The GraphDef and the report, without writing (large weights in ``builder``'s spill, if it has one)."""
    registry = {**REGISTRY, **(handlers or {})}
    layers = [layer for layer in net.layers if layer.type != "Input"]
    dropped = [f"{layer.name} ({layer.type})" for layer in layers if layer.type in TRAINING_ONLY]
    layers = [layer for layer in layers if layer.type not in TRAINING_ONLY]
    if outputs:
        layers = _needed(layers, outputs)
    folded: list[str] = []
    if fold:
        layers, folded = fold_batch_norms(layers)
    _refuse_unconvertible(net, layers, registry)
    b = builder or Builder()
    report = CaffeReport("")
    blobs = _input_blobs(net, b, layout, report)
    for layer in layers:
        convert_layer(registry[layer.type], b, layer, blobs)
        net.release(layer)
        report.layers_converted += 1
    # in-place tops are consumed by the layers that rewrite them; the net's outputs are the rest
    for name in outputs or _net_outputs(layers):
        _add_output(net, b, blobs, name, layout, report)
    report.dropped = dropped
    report.folded = folded
    report.weight_bytes = net.weight_bytes
    report.nodes = len(b.graph.node)
    return b.graph, report


def _refuse_unconvertible(net: CaffeNet, layers: list[CaffeLayer], registry: dict[str, Handler]) -> None:
    """Every layer no handler converts, at once, before anything is made; a net with no input."""
    unsupported = Counter(layer.type for layer in layers if layer.type not in registry)
    if unsupported:
        listed = "; ".join(f"{kind} x{count} ({', '.join(x.name for x in layers if x.type == kind)[:80]})"
                           for kind, count in unsupported.items())
        hint = " -- cut before them with --outputs BLOB" if "DetectionOutput" in unsupported else ""
        raise GraphkitError(f"cannot convert these layers: {listed}{hint}; nothing was written", net.prototxt)
    if not net.inputs:
        raise GraphkitError("the net declares no input (input/input_dim, input_shape or an Input layer); "
                            "give one with --input-shape NAME=N,C,H,W", net.prototxt)


def _input_blobs(net: CaffeNet, b: Builder, layout: Layout, report: CaffeReport) -> dict[str, Tensor]:
    """A Placeholder per input blob (batch unknown; NHWC with ``layout="nhwc"``), recorded in the report:
    "name" the TF node (the blob's name made valid for TF, see valid_node_name), "blob" Caffe's."""
    blobs: dict[str, Tensor] = {}
    for name, dims in net.inputs.items():
        if layout == "nhwc" and len(dims) == 4:
            shape = [-1, dims[2], dims[3], dims[1]]
            blobs[name] = Tensor(b.placeholder(name, shape), tuple(dims), NHWC)
        else:
            shape = [-1, *dims[1:]]
            blobs[name] = Tensor(b.placeholder(name, shape), tuple(dims), identity_perm(len(dims)))
        report.inputs.append({"name": blobs[name].ref.split(":")[0], "blob": name, "shape": shape})
    return blobs


def _add_output(net: CaffeNet, b: Builder, blobs: dict[str, Tensor], name: str, layout: Layout,
                report: CaffeReport) -> None:
    """An Identity named after output blob ``name`` (in the layout's axis order), recorded in the report."""
    if name not in blobs:
        raise GraphkitError(f"--outputs names blob '{name}', which the net does not make", net.prototxt)
    t = blobs[name]
    t = b.to_perm(t, NHWC if layout == "nhwc" and t.rank == 4 else identity_perm(t.rank), f"{name}/output_layout")
    node_name = valid_node_name(name)
    if node_name in b.names:
        raise GraphkitError(f"output blob '{name}' has the name of another node; rename the blob or layer",
                            net.prototxt)
    b.names.add(node_name)
    node = b.graph.node.add(name=node_name, op="Identity", input=[t.ref])
    node.attr["T"].type = dtypes.DT_FLOAT  # type: ignore[assignment]
    report.outputs.append({"name": node_name, "blob": name, "shape": [-1, *(t.stored_shape[1:])]})


def _net_outputs(layers: list[CaffeLayer]) -> list[str]:
    """Blobs whose final value no layer reads (an in-place layer reads the value before its own write)."""
    last = {top: i for i, layer in enumerate(layers) for top in layer.tops}
    read = {bottom for i, layer in enumerate(layers) for bottom in layer.bottoms if last.get(bottom, -1) < i}
    order = list(dict.fromkeys(top for layer in layers for top in layer.tops))
    return [top for top in order if top not in read]


def _needed(layers: list[CaffeLayer], outputs: list[str]) -> list[CaffeLayer]:
    """The layers the ``outputs`` blobs depend on, in order."""
    wanted = set(outputs)
    keep: list[CaffeLayer] = []
    for layer in reversed(layers):
        if wanted & set(layer.tops):
            keep.append(layer)
            wanted |= set(layer.bottoms)
    return list(reversed(keep))


def convert_layer(handler: Handler, b: Builder, layer: CaffeLayer, blobs: dict[str, Tensor]) -> list[Tensor]:
    """Run one layer's handler on the blobs it reads and record its tops in ``blobs`` (caffe2tf and
    inspect's shape inference alike): a layer reading no blob, or one no earlier layer makes, or making
    another number of tops than it declares, is refused naming it."""
    missing = [bottom for bottom in layer.bottoms if bottom not in blobs]
    if missing:
        raise LayerError(layer, f"reads blob(s) {', '.join(missing)} that no earlier layer makes")
    if not layer.bottoms:  # every layer graphkit converts reads a blob (Input layers are the net's inputs)
        raise LayerError(layer, "reads no bottom blob")
    tops = handler(b, layer, [blobs[bottom] for bottom in layer.bottoms])
    if len(tops) != len(layer.tops):
        raise LayerError(layer, f"made {len(tops)} outputs for {len(layer.tops)} tops")
    blobs.update(zip(layer.tops, tops, strict=True))
    return tops


def describe_caffe(prototxt: str | os.PathLike[str], caffemodel: str | os.PathLike[str] | None = None,
             input_shapes: dict[str, tuple[int, ...]] | None = None) -> dict:
    """What ``graphkit inspect`` shows for a Caffe model: inputs, outputs, and per layer its type, bottoms,
    tops, parameters, top shapes (shape inference by the converter's own handlers, so exactly what caffe2tf
    would make) and weight shapes/bytes. Inference stops at the first layer that cannot be converted."""
    from google.protobuf import text_format

    net = read_caffe(prototxt, caffemodel, input_shapes)
    b = Builder(shape_only=True)
    blobs: dict[str, Tensor] = {}
    for name, dims in net.inputs.items():
        blobs[name] = Tensor(b.placeholder(name, [-1, *dims[1:]]), tuple(dims), identity_perm(len(dims)))
    layers, problem = [], None
    for layer in net.layers:
        entry: dict = {"name": layer.name, "type": layer.type, "bottoms": layer.bottoms, "tops": layer.tops,
                       "params": _params_text(layer, text_format), "top_shapes": None,
                       "weights": [{"shape": list(w.shape), "bytes": int(w.nbytes)} for w in layer.blobs or []]}
        if layer.type == "Input":
            entry["top_shapes"] = [list(net.inputs.get(t, ())) for t in layer.tops]
        elif layer.type in TRAINING_ONLY:
            entry["note"] = "training-only: caffe2tf drops it"
        elif problem is None:
            try:
                if layer.type not in REGISTRY:
                    raise LayerError(layer, "no handler (caffe2tf cannot convert it)")
                tops = convert_layer(REGISTRY[layer.type], b, layer, blobs)
                entry["top_shapes"] = [list(t.shape) for t in tops]
            except (GraphkitError, KeyError) as exc:
                problem = f"shapes unknown from layer '{layer.name}' on: {exc}"
        layers.append(entry)
    convertible = [layer for layer in net.layers if layer.type not in TRAINING_ONLY and layer.type != "Input"]
    return {
        "path": str(net.prototxt), "format": "caffe", "caffemodel": str(net.caffemodel) if net.caffemodel else None,
        "name": net.name, "inputs": [{"name": k, "shape": list(v)} for k, v in net.inputs.items()],
        "outputs": _net_outputs(convertible), "layers": layers, "weight_bytes": net.weight_bytes,
        "unsupported": sorted({layer.type for layer in convertible if layer.type not in REGISTRY}),
        "unused_weights": net.unused_weights, "problem": problem,
    }


def _params_text(layer: CaffeLayer, text_format: object) -> str:
    """The layer's own parameter messages as one line, e.g. ``num_output: 96 kernel_size: 11 stride: 4``."""
    parts = []
    for desc, value in layer.params.ListFields():
        if desc.name.endswith("_param"):
            parts.append(text_format.MessageToString(value, as_one_line=True))  # type: ignore[attr-defined]
    return " ".join(p for p in parts if p)


def supported_layers_table() -> str:
    """The README's table of supported layer types, generated from the registry (a test keeps it in sync)."""
    families: dict[str, dict[str, Handler]] = {
        "spatial": spatial.HANDLERS, "elementwise": elementwise.HANDLERS, "shape": shape.HANDLERS, "ssd": ssd.HANDLERS}
    lines = ["| family | layer types |", "|---|---|"]
    for family, handlers in families.items():
        lines.append(f"| {family} | {', '.join(sorted(handlers))} |")
    lines.append(f"| dropped (training-only) | {', '.join(sorted(TRAINING_ONLY))} |")
    return "\n".join(lines)
