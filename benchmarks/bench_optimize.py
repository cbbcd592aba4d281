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
result = optimize_for_inference_lib.optimize_for_inference(gd, inputs, outputs, [tf.float32.as_datatype_enum])
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


if __name__ == "__main__":
    main()
