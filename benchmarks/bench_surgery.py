"""graphkit prune / remap-input vs the TensorFlow way, on a generated 100,000-node graph and a ~1 GB frozen
graph.

    python benchmarks/bench_surgery.py [--nodes 100000] [--gb 1.0] [--workdir bench-out]

graphkit runs with its compiled scanner (graphkit.io._wirescan) when it was built; one row repeats the
100,000-node prune on the protobuf path. The TF way, prune: parse + extract_sub_graph + write (TF's own
graph_util, in Python). TF way, remap-input: parse + import_graph_def(input_map={OLD: placeholder}) +
as_graph_def + extract_sub_graph (import_graph_def keeps the mapped node's upstream) + write.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure, table  # noqa: E402

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

MAKE_WIDE = """
import sys
import numpy as np
from graphkit.io import Graph, save_graph
from graphkit.io.tensors import from_numpy
from graphkit.proto import graph_pb2

path, total = sys.argv[1], int(sys.argv[2])
gd = graph_pb2.GraphDef()
gd.versions.producer = 1700

def add(name, op, inputs=(), **attrs):
    node = gd.node.add(name=name, op=op, input=list(inputs))
    node.attr["T"].type = 1
    return node

x = gd.node.add(name="x", op="Placeholder")
x.attr["dtype"].type = 1
x.attr["shape"].shape.dim.add().size = -1
x.attr["shape"].shape.dim.add().size = 16
value = from_numpy(np.full(16, 0.5, np.float32))
def const(name):
    c = gd.node.add(name=name, op="Const")
    c.attr["dtype"].type = 1
    c.attr["value"].tensor.CopyFrom(value)
    return c
# a front end (10% of nodes), the body (70%) and a side branch nobody needs for 'output' (20%)
prev = "x"
for part, share in (("front", 0.1), ("body", 0.7)):
    for i in range(int(total * share) // 2):
        const(f"{part}/c{i}")
        prev = add(f"{part}/add{i}", "AddV2", [prev, f"{part}/c{i}"]).name
    if part == "front":
        front_out = prev
add("output", "Identity", [prev])
side = front_out
for i in range(int(total * 0.2) // 2):
    const(f"side/c{i}")
    side = add(f"side/mul{i}", "Mul", [side, f"side/c{i}"]).name
add("aux", "Identity", [side])
save_graph(Graph(gd), path)
print(front_out)
"""

TF_PRUNE = """
import sys, tensorflow as tf
src, out, outputs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
gd = tf.compat.v1.GraphDef()
with open(src, "rb") as fh:
    gd.ParseFromString(fh.read())
pruned = tf.compat.v1.graph_util.extract_sub_graph(gd, outputs)
with open(out, "wb") as fh:
    fh.write(pruned.SerializeToString())
"""

TF_REMAP = """
import sys, tensorflow as tf
src, out, old, width, output = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
gd = tf.compat.v1.GraphDef()
with open(src, "rb") as fh:
    gd.ParseFromString(fh.read())
g = tf.Graph()
with g.as_default():
    new = tf.compat.v1.placeholder(tf.float32, [None, width], name="feat")
    tf.compat.v1.import_graph_def(gd, input_map={old: new}, name="")
result = tf.compat.v1.graph_util.extract_sub_graph(g.as_graph_def(), [output])
with open(out, "wb") as fh:
    fh.write(result.SerializeToString())
"""


def main() -> None:
    args, work = bench_args(__doc__, extra=lambda p: p.add_argument("--nodes", type=int, default=100_000))
    here = str(Path(__file__).resolve().parent)
    rows = []

    wide = work / f"wide_{args.nodes}.pb"
    front_file = work / f"wide_{args.nodes}.front"
    if not wide.exists() or not front_file.exists():
        print(f"generating {wide} ({args.nodes:,} nodes)...", file=sys.stderr)
        import subprocess

        front = subprocess.run([PY, "-c", MAKE_WIDE, str(wide), str(args.nodes)], check=True,
                               capture_output=True, text=True).stdout.strip()
        front_file.write_text(front)
    front = front_file.read_text().strip()
    gk = [PY, "-m", "graphkit"]
    rows.append((f"prune {args.nodes:,}-node graph",
                 measure([*gk, "prune", str(wide), str(work / "p_gk.pb"), "--outputs", "output", "-q"], args.repeat),
                 measure([PY, "-c", TF_PRUNE, str(wide), str(work / "p_tf.pb"), "output"], args.repeat, TF_ENV)))
    rows.append(("  same, protobuf path (GRAPHKIT_NO_SCANNER=1)",
                 measure([*gk, "prune", str(wide), str(work / "p_gk_pb.pb"), "--outputs", "output", "-q"], args.repeat,
                         {"GRAPHKIT_NO_SCANNER": "1"}),
                 rows[-1][2]))
    rows.append((f"remap-input {args.nodes:,}-node graph",
                 measure([*gk, "remap-input", str(wide), str(work / "r_gk.pb"), "--placeholder",
                          f"{front}:0=feat:float32[?,16]", "--outputs", "output", "-q"], args.repeat),
                 measure([PY, "-c", TF_REMAP, str(wide), str(work / "r_tf.pb"), f"{front}:0", "16", "output"],
                         args.repeat, TF_ENV)))

    width = 2048
    layers = max(2, round(args.gb * (1 << 30) / (width * width * 4)))
    big = work / f"frozen_{layers}x{width}.pb"
    if not big.exists():
        print(f"generating {big}...", file=sys.stderr)
        measure([PY, str(Path(here) / "bench_inspect.py"), "--workdir", str(work), "--make-graph", str(big),
                 str(layers), str(width)], repeat=1)
    half = layers // 2
    gb = big.stat().st_size / (1 << 30)
    rows.append((f"prune {gb:.2f} GB graph to half",
                 measure([*gk, "prune", str(big), str(work / "bp_gk.pb"), "--outputs", f"layer{half - 1}/Relu",
                          "-q"], args.repeat),
                 measure([PY, "-c", TF_PRUNE, str(big), str(work / "bp_tf.pb"), f"layer{half - 1}/Relu"], args.repeat,
                         TF_ENV)))
    rows.append((f"remap-input {gb:.2f} GB graph at half",
                 measure([*gk, "remap-input", str(big), str(work / "br_gk.pb"), "--placeholder",
                          f"layer{half - 1}/Relu:0=feat:float32[?,{width}]", "--outputs", "output", "-q"],
                         args.repeat),
                 measure([PY, "-c", TF_REMAP, str(big), str(work / "br_tf.pb"), f"layer{half - 1}/Relu:0", str(width),
                          "output"], args.repeat, TF_ENV)))
    from graphkit.io.scan import available

    print(table(rows))
    print(f"compiled scanner: {'built' if available() else 'NOT built: graphkit rows are the protobuf path'}")
    for a, b in (("p_gk.pb", "p_tf.pb"), ("r_gk.pb", "r_tf.pb"), ("bp_gk.pb", "bp_tf.pb"), ("br_gk.pb", "br_tf.pb")):
        print(f"output sizes {a}: {(work / a).stat().st_size:,} vs {b}: {(work / b).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
