"""graphkit freeze vs the TensorFlow way on a generated ~1 GB TF1 checkpoint (64 dense 2048x2048 layers).

    python benchmarks/bench_freeze.py [--gb 1.0] [--workdir bench-out]

TF way: import_meta_graph + restore + convert_variables_to_constants + write (freeze_graph's recipe).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure, table  # noqa: E402

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

MAKE = """
import sys, numpy as np, tensorflow as tf
v1 = tf.compat.v1
prefix, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
g = tf.Graph()
with g.as_default():
    h = v1.placeholder(tf.float32, [None, width], name="x")
    for i in range(layers):
        w = v1.get_variable(f"layer{i}/weights", [width, width], use_resource=False,
                            initializer=v1.random_normal_initializer(stddev=0.01, seed=i))
        h = tf.nn.relu(tf.matmul(h, w))
    tf.identity(h, name="output")
    saver = v1.train.Saver()
    with v1.Session(graph=g) as sess:
        sess.run(v1.global_variables_initializer())
        saver.save(sess, prefix)
"""

TF_FREEZE = """
import sys, tensorflow as tf
v1 = tf.compat.v1
prefix, out = sys.argv[1], sys.argv[2]
g = tf.Graph()
with g.as_default(), v1.Session(graph=g) as sess:
    saver = v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
    saver.restore(sess, prefix)
    frozen = v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), ["output"])
with open(out, "wb") as fh:
    fh.write(frozen.SerializeToString())
"""


def main() -> None:
    args, work = bench_args(__doc__)
    width = 2048
    layers = max(1, round(args.gb * (1 << 30) / (width * width * 4)))
    prefix = work / f"freeze_src_{layers}.ckpt"
    if not Path(f"{prefix}.index").exists():
        print(f"generating {prefix} ({layers} x {width}x{width} float32 variables)...", file=sys.stderr)
        measure([PY, "-c", MAKE, str(prefix), str(layers), str(width)], repeat=1, env=TF_ENV)
    ours = measure([PY, "-m", "graphkit", "freeze", str(prefix), str(work / "frozen_gk.pb"), "--outputs", "output",
                    "-q"], args.repeat)
    theirs = measure([PY, "-c", TF_FREEZE, str(prefix), str(work / "frozen_tf.pb")], args.repeat, TF_ENV)
    same = (work / "frozen_gk.pb").stat().st_size, (work / "frozen_tf.pb").stat().st_size
    print(table([(f"freeze {layers * width * width * 4 / (1 << 30):.2f} GB checkpoint", ours, theirs)]))
    print(f"output sizes: graphkit {same[0]:,} bytes, TF {same[1]:,} bytes")


if __name__ == "__main__":
    main()
