"""graphkit inspect vs the TensorFlow way, on a generated ~1 GB frozen GraphDef and ~1 GB checkpoint.

    python benchmarks/bench_inspect.py [--gb 1.0] [--workdir bench-out]

Needs TensorFlow (for the TF side and to write the checkpoint). Prints a side-by-side table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure, table  # noqa: E402

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def make_graph(path: Path, layers: int, width: int) -> None:
    """A frozen MLP: ``layers`` Const weight matrices [width, width] chained by MatMul (TF-free writer)."""
    import numpy as np

    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.versions.producer = 1700
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    x.attr["shape"].shape.dim.add().size = -1
    x.attr["shape"].shape.dim.add().size = width
    graph = Graph(gd)
    rng = np.random.default_rng(0)
    prev = "x"
    keep = []
    for i in range(layers):
        w = gd.node.add(name=f"layer{i}/w", op="Const")
        w.attr["dtype"].type = 1
        w.attr["value"].tensor.dtype = 1
        for _ in range(2):
            w.attr["value"].tensor.tensor_shape.dim.add().size = width
        data = rng.standard_normal(width * width, dtype=np.float32) * 0.01
        keep.append(data)
        graph.external[w.name] = memoryview(data).cast("B")
        mm = gd.node.add(name=f"layer{i}/MatMul", op="MatMul", input=[prev, w.name])
        mm.attr["T"].type = 1
        relu = gd.node.add(name=f"layer{i}/Relu", op="Relu", input=[mm.name])
        relu.attr["T"].type = 1
        prev = relu.name
    gd.node.add(name="output", op="Identity", input=[prev]).attr["T"].type = 1
    save_graph(graph, path)


CKPT_WRITER = """
import sys, numpy as np, tensorflow as tf
prefix, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(1)
names = [f"layer{i}/weights" for i in range(layers)]
tensors = [tf.constant(rng.standard_normal((width, width), dtype=np.float32)) for _ in names]
tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * layers, tensors=tensors)
"""

TF_INSPECT_GRAPH = """
import sys, tensorflow as tf
gd = tf.compat.v1.GraphDef()
with open(sys.argv[1], "rb") as fh:
    gd.ParseFromString(fh.read())
with tf.Graph().as_default():
    tf.compat.v1.import_graph_def(gd, name="")
"""

TF_LIST_CHECKPOINT = """
import sys, tensorflow as tf
print(tf.train.list_variables(sys.argv[1]))
"""


def main() -> None:
    args, work = bench_args(__doc__, repeat=3, extra=lambda p: p.add_argument(
        "--make-graph", nargs=3, metavar=("PATH", "LAYERS", "WIDTH"), help=argparse.SUPPRESS))
    if args.make_graph:  # runs in a child, so the measuring parent never grows (ru_maxrss survives exec)
        make_graph(Path(args.make_graph[0]), int(args.make_graph[1]), int(args.make_graph[2]))
        return
    width = 2048
    layers = max(1, round(args.gb * (1 << 30) / (width * width * 4)))
    graph = work / "frozen_big.pb"
    prefix = work / "big.ckpt"
    if not graph.exists():
        print(f"generating {graph} ({layers} x {width}x{width} float32)...", file=sys.stderr)
        measure([PY, __file__, "--make-graph", str(graph), str(layers), str(width)], repeat=1)
    if not Path(f"{prefix}.index").exists():
        print(f"generating {prefix}...", file=sys.stderr)
        measure([PY, "-c", CKPT_WRITER, str(prefix), str(layers), str(width)], repeat=1, env=TF_ENV)
    gb = graph.stat().st_size / (1 << 30)
    rows = [
        ("start-up: graphkit --help | import tensorflow",
         measure([PY, "-m", "graphkit", "--help"], args.repeat),
         measure([PY, "-c", "import tensorflow"], args.repeat, TF_ENV)),
        (f"inspect {gb:.2f} GB GraphDef | parse+import_graph_def",
         measure([PY, "-m", "graphkit", "inspect", str(graph), "--json"], args.repeat),
         measure([PY, "-c", TF_INSPECT_GRAPH, str(graph)], args.repeat, TF_ENV)),
        ("inspect 1 GB checkpoint | tf.train.list_variables",
         measure([PY, "-m", "graphkit", "inspect", str(prefix), "--json"], args.repeat),
         measure([PY, "-c", TF_LIST_CHECKPOINT, str(prefix)], args.repeat, TF_ENV)),
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
