"""graphkit caffe2tf on a generated VGG-16-sized caffemodel (~550 MB, random weights), against reading the
caffemodel once and against the naive way (protobuf parse + every blob to numpy).

    python benchmarks/bench_caffe.py [--workdir bench-out]

The goal (issue 5): conversion under 1.5 s, peak RSS under 1.5x the weight bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import bench_args, measure  # noqa: E402

PY = sys.executable


MAKE = """
import sys
import numpy as np
from graphkit.io.wire import LEN, encode_varint, tag
proto, model = sys.argv[1], sys.argv[2]
blocks = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
lines = ['name: "VGG_ILSVRC_16_layers"', 'input: "data"', 'input_dim: 1', 'input_dim: 3', 'input_dim: 224',
         'input_dim: 224']
blobs = []
prev, c_in = "data", 3
for b, (width, count) in enumerate(blocks, 1):
    for i in range(1, count + 1):
        name = f"conv{b}_{i}"
        lines.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{prev}" top: "{name}" '
                     f'convolution_param {{ num_output: {width} pad: 1 kernel_size: 3 }} }}')
        lines.append(f'layer {{ name: "relu{b}_{i}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
        blobs.append((name, [(width, c_in, 3, 3), (width,)]))
        prev, c_in = name, width
    lines.append(f'layer {{ name: "pool{b}" type: "Pooling" bottom: "{prev}" top: "pool{b}" '
                 'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }')
    prev = f"pool{b}"
k = 512 * 7 * 7
for name, n in (("fc6", 4096), ("fc7", 4096), ("fc8", 1000)):
    lines.append(f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{prev}" top: "{name}" '
                 f'inner_product_param {{ num_output: {n} }} }}')
    if name != "fc8":
        lines.append(f'layer {{ name: "relu{name[2:]}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
    blobs.append((name, [(n, k), (n,)]))
    prev, k = name, n
lines.append(f'layer {{ name: "prob" type: "Softmax" bottom: "{prev}" top: "prob" }}')
open(proto, "w").write("\\n".join(lines) + "\\n")

def field(number, payload):
    return tag(number, LEN) + encode_varint(len(payload)) + payload

rng = np.random.default_rng(0)
with open(model, "wb") as fh:
    for name, shapes in blobs:
        parts = [field(1, name.encode())]
        for shape in shapes:
            data = (rng.standard_normal(int(np.prod(shape)), dtype=np.float32) * 0.01).tobytes()
            dims = b"".join(encode_varint(d) for d in shape)
            parts.append(field(7, field(7, field(1, dims)) + field(5, data)))
        layer = b"".join(parts)
        fh.write(tag(100, LEN) + encode_varint(len(layer)))
        fh.write(layer)
"""

READ = "import sys; open(sys.argv[1], 'rb').read()"
NAIVE = """
import sys, numpy as np
from graphkit.proto import caffe_pb2
net = caffe_pb2.NetParameter.FromString(open(sys.argv[1], "rb").read())
arrays = [np.asarray(b.data, dtype=np.float32) for layer in net.layer for b in layer.blobs]
"""


def main() -> None:
    args, work = bench_args(__doc__)
    proto, model = work / "vgg16.prototxt", work / "vgg16.caffemodel"
    if not model.exists():
        print(f"generating {model}...", file=sys.stderr)
        measure([PY, "-c", MAKE, str(proto), str(model)], repeat=1)
    size_mb = model.stat().st_size / 1e6
    out = work / "vgg16.pb"
    rows = [
        ("read the caffemodel once", measure([PY, "-c", READ, str(model)], args.repeat)),
        ("protobuf parse + blobs to numpy (naive)", measure([PY, "-c", NAIVE, str(model)], args.repeat)),
        ("graphkit caffe2tf (convert + write)", measure([PY, "-m", "graphkit", "caffe2tf", str(proto), str(model),
                                                          str(out), "-q"], args.repeat)),
    ]
    print(f"caffemodel: {size_mb:.0f} MB of weights")
    print(f"{'case':44s} {'time':>8s} {'peak RSS':>10s} {'RSS / weights':>14s}")
    for name, run in rows:
        print(f"{name:44s} {run.seconds:7.2f}s {run.peak_mb:8.0f}MB {run.peak_mb / size_mb:13.2f}x")


if __name__ == "__main__":
    main()
