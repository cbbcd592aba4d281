"""``graphkit convert``: any model graphkit reads to ONNX or TFLite, verified by default.

A checkpoint-backed graph or TF1 SavedModel is frozen first (graphkit freeze), a Caffe model converted first
(caffe2tf), into a temporary frozen graph beside the output; then tf2onnx (as a library) or TF's TFLite
converter runs on it, and the result is compared with TensorFlow on random inputs (onnxruntime, or TF's
TFLite interpreter)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import load
from graphkit.io.caffe import is_caffe_prototxt
from graphkit.io.roles import default_outputs, graph_inputs
from graphkit.io.save import atomic_write, check_output, materialize
from graphkit.io.spec import parse_ref
from graphkit.runtime.difference import Difference

ExportTarget = Literal["onnx", "tflite"]


@dataclass
class ConvertReport:
    output_path: str
    target: ExportTarget
    inputs: list[str]
    outputs: list[str]
    via: list[str] = field(default_factory=list)  # steps before the export: freeze, caffe2tf
    bytes_written: int = 0
    verified: list[Difference] = field(default_factory=list)


def convert(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    caffemodel: str | os.PathLike[str] | None = None,
    inputs: list[str] | None = None,
    outputs: list[str] | None = None,
    opset: int | None = None,
    batch: int = 1,
    verify: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    tags: list[str] | None = None,
    signature: str | None = None,
    given: dict[str, np.ndarray] | None = None,
) -> ConvertReport:
    """Convert ``src`` to ``out`` (``.onnx`` or ``.tflite``); see the module docstring. ``given``: inputs
    for the check (by input name), the rest random."""
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in ("onnx", "tflite"):
        raise GraphkitError("OUT must end in .onnx or .tflite", out)
    target: ExportTarget = "onnx" if suffix == "onnx" else "tflite"
    check_output(out, [src] + ([caffemodel] if caffemodel else []))
    report = ConvertReport(os.fspath(out), target, [], [])
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out)), prefix=".graphkit-") as tmp:
        frozen = _frozen(src, caffemodel, Path(tmp), outputs, tags, signature, report)
        graph = load(frozen).require_graph()
        gd = graph.graph_def
        names = report.outputs or [parse_ref(o).node for o in outputs or []] or default_outputs(gd, path=frozen)
        report.outputs = names
        placeholders = graph_inputs(gd)
        report.inputs = [i for i in (inputs or [p.name for p in placeholders if not p.has_default])]
        unknown = [p.name for p in placeholders if p.name in report.inputs and p.shape is None]
        if unknown:
            raise GraphkitError(f"input(s) {', '.join(unknown)} have unknown rank; fix them first, e.g. "
                                f"graphkit remap-input MODEL OUT.pb --constant {unknown[0]}=VALUE.npy (a dropout "
                                f"keep_prob) or graphkit set-batch MODEL OUT.pb --inputs '{unknown[0]}[?,...]'", src)
        from graphkit.runtime import export

        if target == "onnx":
            from graphkit.runtime.targets import unsupported_ops

            missing = unsupported_ops(graph, "onnx", opset=opset)
            if missing:  # tf2onnx would pass them through as custom ops that no ONNX runtime has
                listed = "; ".join(f"{op} (node {', '.join(repr(n) for n in info['nodes'][:3])})"
                                   for op, info in missing.items())
                raise GraphkitError(f"tf2onnx cannot convert {listed}: {next(iter(missing.values()))['note']}; "
                                    "replace those ops, or prune the graph before them", src)
            data = export.to_onnx(materialize(graph).SerializeToString(), [f"{i}:0" for i in report.inputs],
                                  [f"{o}:0" for o in names], opset)
        else:
            shapes = {p.name: [batch if d < 0 else d for d in (p.shape or ())] for p in placeholders
                      if p.name in report.inputs}
            data = export.to_tflite(str(frozen), report.inputs, shapes, names)
        if verify:  # before writing: a model that fails its check is never left at OUT
            _verify(frozen, data, report, batch, rtol, atol, given)
        with atomic_write(out, [src]) as fh:
            fh.write(data)
        report.bytes_written = len(data)
    return report


def _frozen(src: str | os.PathLike[str], caffemodel: str | os.PathLike[str] | None, tmp: Path,
            outputs: list[str] | None, tags: list[str] | None, signature: str | None, report: ConvertReport) -> Path:
    """A frozen GraphDef file for ``src``: itself, or made by caffe2tf / freeze into ``tmp``."""
    if is_caffe_prototxt(src):
        from graphkit.convert.caffe import caffe2tf
        from graphkit.io.caffe import find_caffemodel

        weights = caffemodel or find_caffemodel(str(src))
        if weights is None:
            raise GraphkitError("a Caffe prototxt needs its weights: give --caffemodel", src)
        path = tmp / "caffe.pb"
        made = caffe2tf(src, weights, path, outputs=outputs)
        report.via.append("caffe2tf")
        report.outputs = [o["name"] for o in made.outputs]
        return path
    model = load(src, tags=tags, verify=False)
    model.require_graph()
    if model.checkpoint is not None or model.format == "savedmodel":
        from graphkit.freeze import freeze

        path = tmp / "frozen.pb"
        frozen = freeze(src, path, outputs=outputs, tags=tags, signature=signature)
        report.via.append("freeze")
        report.outputs = list(frozen.outputs)  # every output of the signature (or those asked for)
        return path
    return Path(src)


def _verify(frozen: Path, data: bytes, report: ConvertReport, batch: int, rtol: float, atol: float,
            given: dict[str, np.ndarray] | None = None) -> None:
    """TF on the frozen graph vs onnxruntime / the TFLite interpreter on the same random inputs."""
    from graphkit.runtime.difference import difference, refuse_differences
    from graphkit.runtime.runner import make_feeds, onnx_session, open_runnable, run

    reference = open_runnable(frozen, outputs=report.outputs)
    reference.inputs = [i for i in reference.inputs if i.name in report.inputs]
    feeds = make_feeds(reference, given, batch=batch, seed=0)
    want = run(reference, feeds)
    if report.target == "onnx":
        try:
            session = onnx_session(data, quiet=True)
            values = session.run([f"{o}:0" for o in report.outputs], {f"{k}:0": v for k, v in feeds.items()})
        except Exception as exc:  # onnxruntime raises its own exception types, none exported as a base
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise GraphkitError(f"--verify: onnxruntime cannot run the ONNX model tf2onnx made ({message}); "
                                "the model is not written", report.output_path) from None
        got = dict(zip(report.outputs, values, strict=True))
    else:
        from graphkit.runtime import export

        got = export.run_tflite(data, feeds, report.outputs)
    for name in report.outputs:
        report.verified.append(difference(name, np.asarray(want[name]), name, np.asarray(got[name]), rtol, atol))
    refuse_differences(report.verified, f"the {report.target} model differs from TensorFlow", report.output_path,
                       rtol, atol, "the model is not written")
