"""TF's own ways to optimize a frozen graph, for node counts to beat: optimize_for_inference, and
Grappler's constfold + arithmetic + remapping run through tf.compat.v1 (the test oracle's side)."""

from __future__ import annotations


def optimize_for_inference(tf, graph_def_bytes: bytes, inputs: list[str], outputs: list[str]):
    from tensorflow.python.tools import optimize_for_inference_lib

    gd = tf.compat.v1.GraphDef.FromString(graph_def_bytes)
    by_name = {n.name: n for n in gd.node}
    dtypes = [by_name[i].attr["dtype"].type for i in inputs]
    return optimize_for_inference_lib.optimize_for_inference(gd, inputs, outputs, dtypes)


def grappler(tf, graph_def_bytes: bytes, outputs: list[str]):
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    gd = tf.compat.v1.GraphDef.FromString(graph_def_bytes)
    meta = meta_graph_pb2.MetaGraphDef()
    meta.graph_def.CopyFrom(gd)
    meta.collection_def["train_op"].node_list.value.extend(outputs)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers.extend(["constfold", "arithmetic", "remap"])
    rewrite.min_graph_nodes = -1
    return tf_optimizer.OptimizeGraph(config, meta)
