"""graphkit edit-checkpoint and diff vs the TensorFlow way.

    python benchmarks/bench_checkpoint.py [--gb 1.0] [--nodes 100000] [--workdir bench-out]

edit-checkpoint: a generated ~1 GB TF1 training checkpoint (kernels with their Adam slots, beta powers,
global_step), every key put under net/ and the optimizer state dropped. The TF way is the field's recipe
(the "rename variables in a checkpoint" script): for each key, tf.train.load_variable, a tf.Variable
under the new name, then Saver.save -- every tensor in memory, and again as the variables' initial
values. diff: two 100,000-node GraphDefs that differ in 1% of their constants and 100 added nodes. TF has
no diff; its way is to parse both with TF's protos and compare the nodes by name in Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure, table  # noqa: E402

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

MAKE_CHECKPOINT = """
import sys
import numpy as np
from graphkit.io.bundle import BundleTensor, write_bundle

prefix, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(15)
def tensors():
    for i in range(layers):
        for suffix in ("", "/Adam", "/Adam_1"):
            yield BundleTensor.of(f"layer{i}/kernel{suffix}", rng.standard_normal((width, width), np.float32))
            yield BundleTensor.of(f"layer{i}/bias{suffix}", rng.standard_normal(width, np.float32))
    yield BundleTensor.of("beta1_power", np.float32(0.9) * np.ones((), np.float32))
    yield BundleTensor.of("beta2_power", np.float32(0.999) * np.ones((), np.float32))
    yield BundleTensor.of("global_step", np.array(1000, np.int64))
write_bundle(prefix, list(tensors()))
"""

TF_EDIT = """
import re, sys
import tensorflow as tf
src, out = sys.argv[1], sys.argv[2]
v1 = tf.compat.v1
slot = re.compile(r"/(Adam|Adam_1)$")
with tf.Graph().as_default():
    variables = []
    for name, _ in tf.train.list_variables(src):
        if slot.search(name) or name in ("beta1_power", "beta2_power", "global_step"):
            continue
        variables.append(tf.Variable(tf.train.load_variable(src, name), name="net/" + name))
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        v1.train.Saver(variables).save(sess, out)
"""

MAKE_GRAPHS = """
import sys
import numpy as np
from graphkit.io import Graph, save_graph
from graphkit.io.tensors import from_numpy
from graphkit.proto import graph_pb2

a_path, b_path, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
def build(changed):
    gd = graph_pb2.GraphDef()
    gd.versions.producer = 1700
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    prev = "x"
    for i in range(total // 2):
        c = gd.node.add(name=f"body{i // 1000}/c{i}", op="Const")
        c.attr["dtype"].type = 1
        c.attr["value"].tensor.CopyFrom(from_numpy(np.full(16, 1.5 if i in changed else 0.5, np.float32)))
        node = gd.node.add(name=f"body{i // 1000}/add{i}", op="AddV2", input=[prev, c.name])
        node.attr["T"].type = 1
        prev = node.name
    return gd
a = build(set())
save_graph(Graph(a), a_path)
b = build(set(range(0, total // 2, 50)))
for i in range(100):
    node = b.node.add(name=f"train/assign{i}", op="Identity", input=["x"])
    node.attr["T"].type = 1
save_graph(Graph(b), b_path)
"""

TF_DIFF = """
import sys
import tensorflow as tf
def nodes(path):
    gd = tf.compat.v1.GraphDef()
    with open(path, "rb") as fh:
        gd.ParseFromString(fh.read())
    return {n.name: n for n in gd.node}
a, b = nodes(sys.argv[1]), nodes(sys.argv[2])
added = [n for n in b if n not in a]
removed = [n for n in a if n not in b]
changed = [n for n in b if n in a and a[n] != b[n]]
print(len(added), len(removed), len(changed))
"""


def main() -> None:
    args, work = bench_args(__doc__, repeat=2, extra=lambda p: p.add_argument("--nodes", type=int, default=100_000))
    gk = [PY, "-m", "graphkit"]
    rows = []

    width = 1024
    layers = max(1, round(args.gb * (1 << 30) / (3 * width * (width + 1) * 4)))
    src = work / f"train_{layers}x{width}.ckpt"
    if not Path(f"{src}.index").exists():
        print(f"generating {src} ({layers} layers with Adam slots)...", file=sys.stderr)
        measure([PY, "-c", MAKE_CHECKPOINT, str(src), str(layers), str(width)], repeat=1)
    size = sum(p.stat().st_size for p in work.glob(f"{src.name}.*")) / (1 << 30)
    rows.append((f"edit-checkpoint {size:.2f} GB: net/ + strip Adam",
                 measure([*gk, "edit-checkpoint", str(src), str(work / "edit_gk"), "--add-prefix", "net/",
                          "--strip-optimizer", "-q"], args.repeat),
                 measure([PY, "-c", TF_EDIT, str(src), str(work / "edit_tf")], args.repeat, TF_ENV)))

    a, b = work / f"diff_a_{args.nodes}.pb", work / f"diff_b_{args.nodes}.pb"
    if not a.exists() or not b.exists():
        print(f"generating {a} and {b}...", file=sys.stderr)
        measure([PY, "-c", MAKE_GRAPHS, str(a), str(b), str(args.nodes)], repeat=1)
    rows.append((f"diff two {args.nodes:,}-node graphs",
                 measure([*gk, "diff", str(a), str(b), "-q"], args.repeat, ok_codes=(0, 1)),
                 measure([PY, "-c", TF_DIFF, str(a), str(b)], args.repeat, TF_ENV)))
    print(table(rows))


if __name__ == "__main__":
    main()
