"""graphkit optimize vs the TensorFlow way, on a generated 100,000-node graph and a ~1 GB frozen graph.

    python benchmarks/bench_optimize.py [--nodes 100000] [--gb 1.0] [--workdir bench-out]

The TF ways: parse + Grappler's constfold, arithmetic and remapping (tf_optimizer.OptimizeGraph, what TF
runs when it loads a graph) + write; and parse + optimize_for_inference + write. The 100,000-node graph is
bench_surgery's (chains of AddV2 with equal constants, a side branch no output needs); the 1 GB one
bench_inspect's (an MLP of 2048x2048 MatMul + Relu layers, its weights Consts). Node counts of the three
results are printed too.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure, table  # noqa: E402
from bench_surgery import MAKE_WIDE  # noqa: E402

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

TF_GRAPPLER = """
import sys
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.grappler import tf_optimizer
src, out, outputs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
gd = tf.compat.v1.GraphDef()
with open(src, "rb") as fh:
    gd.ParseFromString(fh.read())
meta = meta_graph_pb2.MetaGraphDef()
meta.graph_def.CopyFrom(gd)
meta.collection_def["train_op"].node_list.value.extend(outputs)
config = config_pb2.ConfigProto()
config.graph_options.rewrite_options.optimizers.extend(["constfold", "arithmetic", "remap"])
config.graph_options.rewrite_options.min_graph_nodes = -1
result = tf_optimizer.OptimizeGraph(config, meta)
with open(out, "wb") as fh:
    fh.write(result.SerializeToString())
"""

TF_OFI = """
import sys
import tensorflow as tf
from tensorflow.python.tools import optimize_for_inference_lib
src, out, inputs, outputs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
gd = tf.compat.v1.GraphDef()
with open(src, "rb") as fh:
    gd.ParseFromString(fh.read())
result = optimize_for_inference_lib.optimize_for_inference(gd, inputs, outputs, tf.float32.as_datatype_enum)
with open(out, "wb") as fh:
    fh.write(result.SerializeToString())
"""


def _nodes(path: Path) -> int:
    from graphkit.io.scan import scan_node_names

    table_ = scan_node_names(path)
    if table_ is None:
        from graphkit.io import load

        graph = load(path).graph
        assert graph is not None
        return len(graph.graph_def.node)
    return len(table_.names)


def _model_counts(work: Path) -> list[str]:
    """Node counts on the test models (frozen by graphkit): input, graphkit --target tf and opencv,
    optimize_for_inference, Grappler -- the issue's bar."""
    import subprocess

    import numpy as np

    from graphkit.freeze import freeze
    from graphkit.io import load
    from graphkit.io.roles import graph_inputs
    from graphkit.optimize import optimize

    root = Path(__file__).resolve().parent.parent
    fixtures, shared = root / "fixtures" / "tf", root.parent / "shared" / "models"
    models: list[tuple[str, Path, dict]] = []
    for name, src, outputs, options in (("keras_bn_cnn", fixtures / "keras_bn_cnn", None, {}),
                                        ("keras_cnn", fixtures / "keras_cnn", None, {}),
                                        ("tf1_bn_dropout", fixtures / "tf1_bn_dropout" / "model.ckpt", ["output"],
                                         {"fold_defaults": True}),
                                        ("batch_norm", fixtures / "batch_norm" / "model.ckpt", ["output"],
                                         {"fold_defaults": True})):
        frozen = work / f"model_{name}.pb"
        freeze(src, frozen, outputs=outputs)
        models.append((name, frozen, options))
    for name in ("fc-layers", "ae0", "lstm", "gru"):
        path = shared / "tf2onnx_models" / name / "frozen.pb"
        if path.exists():
            models.append((name, path, {"constants": {"keep_prob": np.float32(1.0)}} if name in ("lstm", "gru")
                           else {}))
    if (shared / "tf_mtcnn_blaueck" / "mtcnn.pb").exists():
        models.append(("mtcnn", shared / "tf_mtcnn_blaueck" / "mtcnn.pb", {}))
    lines = ["model: input -> graphkit tf / opencv / optimize_for_inference / Grappler"]
    for name, src, options in models:
        ours = optimize(src, work / f"model_{name}_gk.pb", **options)
        cv = optimize(src, work / f"model_{name}_cv.pb", target="opencv", **options)
        inputs = [i.name for i in graph_inputs(load(src).graph.graph_def) if i.name not in options.get("constants", {})]
        theirs = []
        for script, extra in ((TF_OFI, [",".join(inputs)]), (TF_GRAPPLER, [])):
            out = work / f"model_{name}_tf.pb"
            done = subprocess.run([PY, "-c", script, str(src), str(out), *extra, ",".join(ours.outputs)],
                                  capture_output=True, env={**__import__("os").environ, **TF_ENV})
            theirs.append(str(_nodes(out)) if done.returncode == 0 else "refused")
        lines.append(f"  {name}: {ours.nodes_before} -> {ours.nodes_after} / {cv.nodes_after} / {' / '.join(theirs)}")
    return lines


def main() -> None:
    args, work = bench_args(__doc__, extra=lambda p: p.add_argument("--nodes", type=int, default=100_000))
    here = Path(__file__).resolve().parent
    gk = [PY, "-m", "graphkit"]
    rows, counts = [], []

    wide = work / f"wide_{args.nodes}.pb"
    if not wide.exists():
        print(f"generating {wide} ({args.nodes:,} nodes)...", file=sys.stderr)
        measure([PY, "-c", MAKE_WIDE, str(wide), str(args.nodes)], repeat=1)
    width = 2048
    layers = max(2, round(args.gb * (1 << 30) / (width * width * 4)))
    big = work / f"frozen_{layers}x{width}.pb"
    if not big.exists():
        print(f"generating {big}...", file=sys.stderr)
        measure([PY, str(here / "bench_inspect.py"), "--workdir", str(work), "--make-graph", str(big), str(layers),
                 str(width)], repeat=1)
    for label, src, outputs in ((f"{args.nodes:,}-node graph", wide, "output,aux"),
                                (f"{big.stat().st_size / (1 << 30):.2f} GB frozen graph", big, "output")):
        stem = src.stem
        ours = measure([*gk, "optimize", str(src), str(work / f"{stem}_gk.pb"), "--outputs", outputs, "-q"],
                       args.repeat)
        grappler = measure([PY, "-c", TF_GRAPPLER, str(src), str(work / f"{stem}_grappler.pb"), outputs],
                           args.repeat, TF_ENV)
        ofi = measure([PY, "-c", TF_OFI, str(src), str(work / f"{stem}_ofi.pb"), "x", outputs], args.repeat, TF_ENV)
        rows.append((f"optimize {label} vs Grappler", ours, grappler))
        rows.append(("  same vs optimize_for_inference", ours, ofi))
        counts.append((label, _nodes(src), _nodes(work / f"{stem}_gk.pb"), _nodes(work / f"{stem}_grappler.pb"),
                       _nodes(work / f"{stem}_ofi.pb")))
    print(table(rows))
    print("\nnodes: input -> graphkit / Grappler / optimize_for_inference")
    for label, before, *after in counts:
        print(f"  {label}: {before:,} -> {after[0]:,} / {after[1]:,} / {after[2]:,}")
    print()
    print("\n".join(_model_counts(work)))


if __name__ == "__main__":
    main()
