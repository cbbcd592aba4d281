"""graphkit freeze vs the TensorFlow way on a generated ~1 GB TF2 SavedModel (a tf.Module of 64 2048x2048
float32 matmuls, ``tf.saved_model.save``).

    python benchmarks/bench_freeze_tf2.py [--gb 1.0] [--workdir bench-out]

TF way: tf.saved_model.load + convert_variables_to_constants_v2 on the serving signature + write its
GraphDef (what every "freeze a TF2 model" answer recommends; TF has no public TF2 freezer). One run each.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure, table  # noqa: E402

PY = sys.executable
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

MAKE = """
import sys, tensorflow as tf
path, layers, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

class Net(tf.Module):
    def __init__(self):
        super().__init__()
        self.weights = [tf.Variable(tf.random.stateless_normal([width, width], [i, 0]) * (2.0 / width) ** 0.5,
                                    name=f"w{i}")
                        for i in range(layers)]

    @tf.function(input_signature=[tf.TensorSpec([None, width], tf.float32, name="x")])
    def __call__(self, x):
        for w in self.weights:
            x = tf.nn.relu(tf.matmul(x, w))
        return {"y": x}

net = Net()
tf.saved_model.save(net, path, signatures={"serving_default": net.__call__})
"""

TF_FREEZE = """
import sys, tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
path, out = sys.argv[1], sys.argv[2]
loaded = tf.saved_model.load(path)
frozen = convert_variables_to_constants_v2(loaded.signatures["serving_default"])
with open(out, "wb") as fh:
    fh.write(frozen.graph.as_graph_def().SerializeToString())
"""


def main() -> None:
    args, work = bench_args(__doc__, repeat=1)
    width = 2048
    layers = max(1, round(args.gb * (1 << 30) / (width * width * 4)))
    src = work / f"freeze_tf2_src_{layers}"
    if not (src / "saved_model.pb").exists():
        print(f"generating {src} ({layers} x {width}x{width} float32 variables)...", file=sys.stderr)
        measure([PY, "-c", MAKE, str(src), str(layers), str(width)], repeat=1, env=TF_ENV)
    ours = measure([PY, "-m", "graphkit", "freeze", str(src), str(work / "frozen_tf2_gk.pb"), "-q"], args.repeat)
    theirs = measure([PY, "-c", TF_FREEZE, str(src), str(work / "frozen_tf2_tf.pb")], args.repeat, TF_ENV)
    sizes = (work / "frozen_tf2_gk.pb").stat().st_size, (work / "frozen_tf2_tf.pb").stat().st_size
    print(table([(f"freeze {layers * width * width * 4 / (1 << 30):.2f} GB TF2 SavedModel", ours, theirs)]))
    print(f"output sizes: graphkit {sizes[0]:,} bytes, TF {sizes[1]:,} bytes")


if __name__ == "__main__":
    main()
