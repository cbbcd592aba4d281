"""Running any model graphkit reads -- a frozen GraphDef, a checkpoint-backed graph, a SavedModel signature
(TF1 or TF2), an ONNX file -- on given or random inputs; comparing two models output by output.

TensorFlow (and onnxruntime) are imported here only, lazily, through graphkit.runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from graphkit.errors import GraphkitError, about
from graphkit.io import GraphIndex, Model, dtypes, load
from graphkit.io.checks import check_importable
from graphkit.io.ops import UNSAFE_OPS
from graphkit.io.passes import extract_subgraph
from graphkit.io.roles import Input, clear_outputs, graph_inputs, likely_outputs, pick_signature
from graphkit.io.spec import parse_ref
from graphkit.io.tensors import shape_of
from graphkit.proto import graph_pb2
from graphkit.runtime.difference import Difference

RunnableKind = Literal["graphdef", "checkpoint", "savedmodel", "savedmodel-tf2", "onnx", "tflite"]


@dataclass
class Runnable:
    """A model ready to run: its inputs (with dtype/shape) and outputs, by the names users see."""

    path: str
    kind: RunnableKind
    inputs: list[Input]
    outputs: list[str]
    model: Model | None = None
    signature: str | None = None
    feed_names: dict[str, str] = field(default_factory=dict)  # input name -> tensor to feed
    fetch_names: dict[str, str] = field(default_factory=dict)  # output name -> tensor to fetch
    left_out: list[str] = field(default_factory=list)  # "name: why" of candidate outputs not taken by default


def open_runnable(path: str | os.PathLike[str], *, signature: str | None = None, tags: list[str] | None = None,
                  outputs: list[str] | None = None, allow_unsafe_ops: bool = False) -> Runnable:
    """Load ``path`` for running; outputs default to the signature's, else the likely outputs."""
    with about(path):
        from graphkit.io.foreign import ONNX, TFLITE, foreign_format

        other = foreign_format(path) if os.path.isfile(path) else None
        if other == ONNX:
            return _open_onnx(str(path), outputs)
        if other == TFLITE:
            return _open_tflite(str(path), outputs)
        model = load(path, tags=tags, verify=False)
        # what TF would refuse is said in graphkit's words, before inputs are made for it; TF itself aborts
        # the process on some of it (a Const whose value has another dtype)
        graph = model.require_graph()
        check_importable(graph.graph_def, path, "the graph")
        meta = model.meta_graph
        if model.format == "savedmodel" and meta is not None and meta.signature_def:
            key = pick_signature(meta, signature, path)
            sig = meta.signature_def[key]
            tf2 = len(meta.object_graph_def.nodes) > 1
            inputs = []
            for k, info in sorted(sig.inputs.items()):
                inputs.append(Input(k, "Placeholder", dtypes.name(info.dtype),
                                    None if info.tensor_shape.unknown_rank else shape_of(info.tensor_shape)))
            runnable = Runnable(str(path), "savedmodel-tf2" if tf2 else "savedmodel", inputs,
                                [o for o in (outputs or sorted(sig.outputs))], model, key,
                                {k: v.name for k, v in sig.inputs.items()}, {k: v.name for k, v in sig.outputs.items()})
            missing = [o for o in runnable.outputs if o not in runnable.fetch_names]
            if missing:
                raise GraphkitError(f"signature '{key}' has no output {', '.join(missing)} (it has: "
                                    f"{', '.join(sorted(sig.outputs))})", path)
            if not tf2:
                fetched = [parse_ref(runnable.fetch_names[o]).node for o in runnable.outputs]
                _check_safe(model, fetched, allow_unsafe_ops)
            return runnable
        ranked = likely_outputs(graph.graph_def, meta)
        chosen = clear_outputs(ranked)
        names = outputs or [o.name for o in chosen]
        left = [] if outputs else [f"{o.name}: {o.reason}" for o in ranked if o not in chosen]
        if not names:
            raise GraphkitError("cannot tell the outputs; name them with --output", path)
        nodes = [parse_ref(n).node for n in names]
        pruned = _check_safe(model, nodes, allow_unsafe_ops)
        kind: RunnableKind = "checkpoint" if model.checkpoint is not None and meta is not None else "graphdef"
        inputs = graph_inputs(pruned)
        return Runnable(str(path), kind, inputs, list(names), model,
                        feed_names={i.name: f"{i.name}:0" for i in inputs},
                        fetch_names={n: parse_ref(n).tensor for n in names}, left_out=left)


def _check_safe(model: Model, outputs: list[str], allow: bool) -> graph_pb2.GraphDef:
    """The part of the graph ``outputs`` need; refused (naming the nodes) when it has file-system or
    code-running ops, unless ``allow``."""
    assert model.graph is not None
    gd = model.graph.graph_def
    index = GraphIndex(gd)
    for name in outputs:
        index.node(name)
    needed = extract_subgraph(gd, outputs, index=index)
    if allow:
        return needed
    bad = [f"{n.name} ({n.op})" for n in needed.node if _unsafe(n)]
    bad += [f"{f.signature.name}/{n.name} ({n.op})" for f in needed.library.function for n in f.node_def
            if _unsafe(n)]
    if bad:
        raise GraphkitError(f"the outputs need ops that touch files or run code: {', '.join(bad[:6])}; "
                            "rerun with --allow-unsafe-ops if you trust this model", model.path)
    return needed


def _unsafe(node: Any) -> bool:
    """File-system or code-running ops, and PrintV2 writing to a file (``output_stream: file://...``)."""
    return node.op in UNSAFE_OPS or (node.op == "PrintV2" and node.attr["output_stream"].s.startswith(b"file://"))


def _open_onnx(path: str, outputs: list[str] | None) -> Runnable:
    session = onnx_session(path)
    inputs = []
    for arg in session.get_inputs():
        dims = tuple(d if isinstance(d, int) else -1 for d in arg.shape)
        inputs.append(Input(arg.name, "onnx", _onnx_dtype(arg.type), dims))
    names = outputs or [o.name for o in session.get_outputs()]
    return Runnable(path, "onnx", inputs, list(names), feed_names={i.name: i.name for i in inputs},
                    fetch_names={n: n for n in names})


def _open_tflite(path: str, outputs: list[str] | None) -> Runnable:
    from graphkit.runtime.foreign import tflite_interpreter

    interpreter = tflite_interpreter(path)
    inputs = []
    for d in interpreter.get_input_details():
        dims = d["shape_signature"] if len(d.get("shape_signature", [])) else d["shape"]
        inputs.append(Input(d["name"], "tflite", np.dtype(d["dtype"]).name, tuple(int(x) for x in dims)))
    names = outputs or [d["name"] for d in interpreter.get_output_details()]
    return Runnable(path, "tflite", inputs, list(names), feed_names={i.name: i.name for i in inputs},
                    fetch_names={n: n for n in names})


def onnx_session(model: str | bytes, quiet: bool = False) -> Any:
    """An onnxruntime CPU session of an .onnx file or its bytes (``quiet``: no log lines at all)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise GraphkitError("running ONNX needs onnxruntime: pip install 'graphkit[onnx]'") from exc
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4 if quiet else 3  # errors only: exporters' warnings are not the user's business
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _onnx_dtype(text: str) -> str:
    return {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
            "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
            "tensor(float16)": "float16", "tensor(string)": "string"}.get(text, text)


def make_feeds(runnable: Runnable, given: dict[str, np.ndarray] | None = None, *, batch: int = 1, seed: int = 0,
               shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """A value for every input: given (by input name or tensor name), else random by dtype/shape."""
    from graphkit.runtime import random_feeds

    given = dict(given or {})
    shaped = []
    for item in runnable.inputs:
        shape = (shapes or {}).get(item.name, item.shape)
        shaped.append(Input(item.name, item.op, item.dtype, shape, item.has_default))
    unknown = [k for k in given if k not in {i.name for i in runnable.inputs}
               and k not in {f"{i.name}:0" for i in runnable.inputs} and k not in runnable.feed_names.values()]
    if unknown:
        raise GraphkitError(f"--input names {', '.join(unknown)}, not an input of {runnable.path} "
                            f"(inputs: {', '.join(i.name for i in runnable.inputs) or 'none'})")
    with about(runnable.path):  # "input 'x' has unknown rank" names the model
        feeds = random_feeds(shaped, batch, seed, given)
    return {k[:-2] if k.endswith(":0") else k: v for k, v in feeds.items()}


def run(runnable: Runnable, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run once; the outputs by name."""
    from graphkit import runtime

    outputs = runnable.outputs
    if runnable.kind == "onnx":
        session = onnx_session(runnable.path)
        values = session.run(outputs, feeds)
        return dict(zip(outputs, values, strict=True))
    if runnable.kind == "tflite":
        from graphkit.runtime import export

        with open(runnable.path, "rb") as fh:
            return export.run_tflite(fh.read(), feeds, outputs)
    tf = runtime.import_tf()
    v1 = tf.compat.v1
    tensor_feeds = {runnable.feed_names.get(k, f"{k}:0"): v for k, v in feeds.items()}
    fetches = [runnable.fetch_names[o] for o in outputs]
    if runnable.kind == "savedmodel-tf2":
        assert runnable.signature is not None
        return dict(zip(outputs, runtime.run_signature(runnable.path, runnable.signature, feeds, outputs,
                                                             runnable.model.tags if runnable.model else None),
                        strict=True))
    from graphkit.io.save import materialize

    assert runnable.model is not None and runnable.model.graph is not None
    if runnable.kind == "checkpoint":
        assert runnable.model.checkpoint is not None
        values = runtime.run_with_checkpoint(runtime.meta_graph_bytes(runnable.model),
                                             str(runnable.model.checkpoint.prefix), tensor_feeds, fetches,
                                             runnable.path)
    elif runnable.kind == "savedmodel":
        graph = tf.Graph()
        with graph.as_default(), v1.Session(graph=graph) as sess:
            v1.saved_model.loader.load(sess, runnable.model.tags or ["serve"], runnable.path)
            values = runtime.session_run(sess, fetches, tensor_feeds, runnable.path)
    else:
        values = runtime.run_graph_def(materialize(runnable.model.graph).SerializeToString(), tensor_feeds,
                                       fetches, runnable.path)
    return dict(zip(outputs, values, strict=True))


def run_model(model: str | os.PathLike[str], *, inputs: dict[str, np.ndarray] | None = None,
              outputs: list[str] | None = None, signature: str | None = None, tags: list[str] | None = None,
              batch: int = 1, input_shapes: dict[str, tuple[int, ...]] | None = None, seed: int = 0,
              allow_unsafe_ops: bool = False) -> dict[str, np.ndarray]:
    """``graphkit run`` as a function (``graphkit.run``): the model's outputs by name, for the given inputs
    (by input name; the rest random, as the command does)."""
    runnable = open_runnable(model, signature=signature, tags=tags, outputs=outputs,
                             allow_unsafe_ops=allow_unsafe_ops)
    return run(runnable, make_feeds(runnable, inputs, batch=batch, seed=seed, shapes=input_shapes))


def summarize_values(values: dict[str, np.ndarray]) -> list[dict]:
    """Per output: name, shape, dtype, min/max/mean (numbers only)."""
    out = []
    for name, value in values.items():
        arr = np.asarray(value)
        entry: dict = {"name": name, "shape": list(arr.shape), "dtype": str(arr.dtype)}
        if arr.size and arr.dtype.kind in "fiub":
            entry.update(min=float(arr.min()), max=float(arr.max()), mean=float(arr.astype(np.float64).mean()))
        out.append(entry)
    return out


@dataclass
class Comparison:
    a: str
    b: str
    pairs: list[tuple[str, str]]
    results: list[Difference]
    ok: bool


def _bare(name: str) -> str:
    """A tensor name without its ``:0`` (what graphkit's ONNX export keeps from TF)."""
    return name[:-2] if name.endswith(":0") else name


def compare(a: str | os.PathLike[str], b: str | os.PathLike[str], *, given: dict[str, np.ndarray] | None = None,
            pairs: dict[str, str] | None = None, rtol: float = 1e-5, atol: float = 1e-5, batch: int = 1,
            seed: int = 0, signature: str | None = None, tags: list[str] | None = None,
            allow_unsafe_ops: bool = False) -> Comparison:
    """Run A and B on the same inputs and compare every output pair (by name, or ``pairs`` A_OUT -> B_OUT)."""
    with about(f"{a} vs {b}"):
        ra = open_runnable(a, signature=signature, tags=tags, outputs=list(pairs) if pairs else None,
                           allow_unsafe_ops=allow_unsafe_ops)
        rb = open_runnable(b, signature=signature, tags=tags, outputs=list(pairs.values()) if pairs else None,
                           allow_unsafe_ops=allow_unsafe_ops)
        if pairs:
            matched = list(pairs.items())
        else:
            by_name = {_bare(o): o for o in rb.outputs}  # x:0 (a TF tensor name, graphkit's ONNX) pairs with x
            matched = [(o, by_name[_bare(o)]) for o in ra.outputs if _bare(o) in by_name]
            if not matched and len(ra.outputs) == len(rb.outputs) == 1:
                matched = [(ra.outputs[0], rb.outputs[0])]
            if not matched:
                raise GraphkitError(f"no output names in common ({', '.join(ra.outputs)} vs {', '.join(rb.outputs)}); "
                                    "pair them with --pair A_OUT=B_OUT")
        feeds = make_feeds(ra, given, batch=batch, seed=seed)
        by_input = {_bare(k): v for k, v in feeds.items()}
        required_b = [i.name for i in rb.inputs if not i.has_default]  # optional inputs keep their defaults
        names_b = [i.name for i in rb.inputs]
        if len(feeds) == len(required_b) == 1 and _bare(required_b[0]) not in by_input:
            feeds_b = {required_b[0]: next(iter(feeds.values()))}
        else:
            missing = [n for n in required_b if _bare(n) not in by_input]
            if missing:
                raise GraphkitError(f"B needs inputs A does not have: {', '.join(missing)}; give them with --input")
            feeds_b = {n: by_input[_bare(n)] for n in names_b if _bare(n) in by_input}
        va, vb = run(ra, feeds), run(rb, feeds_b)
        from graphkit.runtime.difference import difference

        results = [difference(x, va[x], y, vb[y], rtol, atol) for x, y in matched]
        return Comparison(str(a), str(b), matched, results, all(r.ok for r in results))

