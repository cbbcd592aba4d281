"""Regenerate graphkit/io/data/tf_ops.pb.gz: the OpDef of every op TensorFlow registers.

Dev-only, like gen_protos.py. A GraphDef's ``stripped_op_list`` covers only the ops TF's exporter found
(``meta_graph.py:ops_used_by_graph_def`` follows ``f`` attrs but not ``then_branch``/``body``/...), and a bare
GraphDef has none, yet reading a function body's ``node:out_arg:i`` references needs each op's output args.
So graphkit ships TF's whole op registry (``TF_GetAllOpList``), with the human-readable descriptions removed:
a serialized ``OpList`` (graphkit_tf.OpList: the same wire format), gzip-compressed.

Usage (needs the tensorflow the tests pin):

    python tools/gen_opdefs.py
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OUT = Path(__file__).resolve().parent.parent / "graphkit" / "io" / "data" / "tf_ops.pb.gz"


def main() -> None:
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    for op in ops.op:
        op.ClearField("summary")
        op.ClearField("description")
        for arg in [*op.input_arg, *op.output_arg]:
            arg.ClearField("description")
        for attr in op.attr:
            attr.ClearField("description")
    ordered = op_def_pb2.OpList()
    ordered.op.extend(sorted(ops.op, key=lambda o: o.name))
    data = ordered.SerializeToString(deterministic=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(data)
    print(f"wrote {len(ordered.op)} op defs of TensorFlow {tf.__version__} to {OUT} "
          f"({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
