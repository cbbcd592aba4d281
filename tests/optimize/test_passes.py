"""Each optimize pass alone on tiny graphs built with TF: the nodes before and after, and the values TF
computes from both."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_graph

from graphkit.errors import GraphkitError
from graphkit.io import Graph, load
from graphkit.optimize import PASSES
from graphkit.optimize.context import Context


def _graph(tf, build):
    """A GraphDef built by ``build()`` in a fresh TF1 graph (control flow v1), as graphkit's Graph."""
    from graphkit.proto import graph_pb2

    v1 = tf.compat.v1
    v1.disable_control_flow_v2()
    try:
        with tf.Graph().as_default() as g:
            build()
            gd = g.as_graph_def()
    finally:
        v1.enable_control_flow_v2()
    return Graph(graph_pb2.GraphDef.FromString(gd.SerializeToString()))


def _run(tf, graph, fetches, feed):
    gd = tf.compat.v1.GraphDef.FromString(graph.graph_def.SerializeToString())
    return run_graph(tf, gd, fetches, feed)


def _ops(graph):
    return sorted(n.op for n in graph.graph_def.node)


def _apply(graph, names, outputs, **ctx):
    context = Context(outputs, **ctx)
    for name in names:
        graph, _ = PASSES[name](graph, context)
    return graph


def test_fold_constants_evaluates_what_numpy_computes_as_tf(tf):
    """Shape arithmetic and elementwise ops on constants fold (the node keeps its name, so its readers
    are unchanged); what depends on the input stays; TF gives the same values before and after."""
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None, 4, 6], name="x")
        scale = tf.sqrt(tf.constant([4.0, 9.0, 16.0, 25.0, 36.0, 49.0]) + 0.5) * tf.constant(2.0)
        shape = tf.stack([tf.constant(-1), tf.constant(24)])
        flat = tf.reshape(x * scale, shape, name="flat")
        cols = tf.strided_slice(tf.range(10), [1], [-1], [2], name="cols")  # 1, 3, 5, 7
        picked = tf.gather(flat, cols, axis=1, name="picked")
        known = v1.placeholder(tf.float32, [3, 5], name="known")
        n = tf.cast(tf.raw_ops.Shape(input=known, name="known_shape")[1], tf.float32)  # its shape is known
        tf.identity(picked * n + tf.math.rsqrt(tf.constant(4.0)), name="out")

    graph = _graph(tf, build)
    folded, changes = PASSES["fold-constants"](graph, Context(["out"]))
    names = {n.name: n.op for n in folded.graph_def.node}
    assert names["cols"] == "Const" and names["mul"] == "Const" and names["flat"] == "Reshape"
    assert {"cols (StridedSlice)", "stack (Pack)", "known_shape (Shape)", "Sqrt (Sqrt)"} <= set(changes)
    xv = np.random.default_rng(1).standard_normal((2, 4, 6)).astype(np.float32)
    feed = {"x:0": xv, "known:0": np.zeros((3, 5), np.float32)}
    (want,) = _run(tf, graph, ["out"], feed)
    (got,) = _run(tf, folded, ["out"], feed)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_what_numpy_would_compute_otherwise_stays(tf):
    """A Fill past --max-folded-bytes, a float Range (TF accumulates), an out-of-range cast and a
    truncating one are left for TF to compute."""
    def build():
        tf.fill([1024, 1024], 1.0, name="big")
        tf.range(0.0, 1.0, 0.1, name="frange")
        tf.cast(tf.constant([3e9]), tf.int32, name="overflow")
        tf.identity(tf.constant(1), name="out")

    graph = _graph(tf, build)
    folded, _ = PASSES["fold-constants"](graph, Context(["big", "frange", "overflow"], max_folded_bytes=1 << 20))
    ops = {n.name: n.op for n in folded.graph_def.node}
    assert ops["big"] == "Fill" and ops["frange"] == "Range" and ops["overflow"] == "Cast"
    folded, _ = PASSES["fold-constants"](graph, Context(["big"], max_folded_bytes=8 << 20))
    assert {n.name: n.op for n in folded.graph_def.node}["big"] == "Const"


def test_constants_and_dead_branches_keep_the_taken_side(tf):
    """TF1 cond + dropout on is_training: with --fold-defaults (or --constant) the predicate is a
    constant, the Switch/Merge go and so does the training branch with its RandomUniform."""
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        training = v1.placeholder_with_default(False, [], name="is_training")
        h = tf.cond(training, lambda: tf.nn.dropout(x, rate=0.5), lambda: x * 2.0)
        tf.identity(h + 1.0, name="out")

    graph = _graph(tf, build)
    assert "Switch" in _ops(graph) and "RandomUniform" in _ops(graph)
    done = _apply(graph, ["constants", "dead-branches", "cleanup"], ["out"], fold_defaults=True)
    assert not {"Switch", "Merge", "RandomUniform", "PlaceholderWithDefault"} & set(_ops(done))
    xv = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(_run(tf, done, ["out"], {"x:0": xv})[0], xv * 2 + 1)
    training = _apply(graph, ["constants", "dead-branches", "cleanup"], ["out"],
                      constants={"is_training": np.array(True)})
    assert "RandomUniform" in _ops(training) and "Switch" not in _ops(training)
    with pytest.raises(GraphkitError, match="--constant nope: not in the graph"):
        _apply(graph, ["constants"], ["out"], constants={"nope": np.array(1.0)})
    with pytest.raises(GraphkitError, match="shape \\[2\\] does not fit"):
        _apply(graph, ["constants"], ["out"], constants={"is_training": np.array([True, False])})


def test_functional_if_with_a_constant_cond_is_inlined(tf, tmp_path):
    """Control flow v2: an If whose cond is fixed becomes the taken branch's body."""
    from graphkit.proto import graph_pb2

    @tf.function
    def f(x, flag):
        return tf.cond(flag, lambda: x * 3.0, lambda: x - 1.0)

    concrete = f.get_concrete_function(tf.TensorSpec([2], tf.float32, name="x"), tf.TensorSpec([], tf.bool,
                                                                                              name="flag"))
    gd = graph_pb2.GraphDef.FromString(concrete.graph.as_graph_def().SerializeToString())
    graph = Graph(gd)
    out = next(n.name for n in gd.node if n.op == "Identity" and "Identity" in n.name)
    assert any(n.op in ("If", "StatelessIf") for n in gd.node)
    for flag, want in ((True, [3.0, 6.0]), (False, [0.0, 1.0])):
        done = _apply(graph, ["constants", "dead-branches", "cleanup"], [out], constants={"flag": np.array(flag)})
        assert not {"If", "StatelessIf"} & set(_ops(done)) and not done.graph_def.library.function
        np.testing.assert_array_equal(_run(tf, done, [out], {"x:0": np.array([1.0, 2.0], np.float32)})[0], want)


def test_fused_batch_norm_folds_into_the_convolution(tf):
    """Conv2D -> FusedBatchNormV3 (inference) -> Relu, and MatMul -> BiasAdd -> Mul -> Add: no batch
    norm, no Mul/Add left; the weights carry the scale, a BiasAdd the shift; TF agrees."""
    v1 = tf.compat.v1
    rng = np.random.default_rng(4)

    def build():
        x = v1.placeholder(tf.float32, [None, 6, 6, 2], name="x")
        w = tf.constant(rng.standard_normal((3, 3, 2, 4)).astype(np.float32))
        y = tf.nn.conv2d(x, w, 1, "SAME")
        stats = [tf.constant(rng.uniform(0.5, 1.5, 4).astype(np.float32)) for _ in range(4)]
        y, _, _ = v1.nn.fused_batch_norm(y, stats[0], stats[1], mean=stats[2], variance=stats[3], epsilon=1e-3,
                                         is_training=False)
        h = tf.reduce_mean(tf.nn.relu(y), axis=[1, 2])
        d = tf.nn.bias_add(tf.matmul(h, tf.constant(rng.standard_normal((4, 3)).astype(np.float32))),
                           tf.constant([0.1, 0.2, 0.3]))
        tf.identity(d * tf.constant([2.0, 3.0, 4.0]) + tf.constant([1.0, 1.0, 1.0]), name="out")

    graph = _graph(tf, build)
    done = _apply(graph, ["fold-constants", "fold-batch-norms", "cleanup"], ["out"])
    ops = _ops(done)
    assert "FusedBatchNormV3" not in ops and "Mul" not in ops and "AddV2" not in ops and ops.count("BiasAdd") == 2
    xv = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(_run(tf, done, ["out"], {"x:0": xv})[0], _run(tf, graph, ["out"], {"x:0": xv})[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["depthwise", "transpose"])
def test_a_scale_folds_into_depthwise_and_transposed_convolutions(tf, kind):
    """DepthwiseConv2dNative (channel = input channel x multiplier) and Conv2DBackpropInput (the filter's
    third axis): a per-channel Mul and Add after them go into the filter and a BiasAdd."""
    v1 = tf.compat.v1
    rng = np.random.default_rng(6)

    def build():
        x = v1.placeholder(tf.float32, [2, 5, 5, 3], name="x")
        if kind == "depthwise":
            y = tf.nn.depthwise_conv2d(x, tf.constant(rng.standard_normal((3, 3, 3, 2)).astype(np.float32)),
                                       [1, 1, 1, 1], "SAME")
            channels = 6
        else:
            y = tf.nn.conv2d_transpose(x, tf.constant(rng.standard_normal((3, 3, 4, 3)).astype(np.float32)),
                                       [2, 10, 10, 4], 2, "SAME")
            channels = 4
        scale = tf.constant(rng.uniform(0.5, 2.0, channels).astype(np.float32))
        tf.identity(y * scale + tf.constant(rng.uniform(-1, 1, channels).astype(np.float32)), name="out")

    graph = _graph(tf, build)
    done = _apply(graph, ["fold-constants", "fold-batch-norms", "cleanup"], ["out"])
    assert "Mul" not in _ops(done) and "AddV2" not in _ops(done) and "BiasAdd" in _ops(done)
    xv = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(tf, done, ["out"], {"x:0": xv})[0], _run(tf, graph, ["out"], {"x:0": xv})[0],
                               rtol=1e-5, atol=1e-5)


def test_a_scale_something_else_reads_stays_a_mul(tf):
    """When the convolution's output is read elsewhere too, the batch norm stays one Mul + Add."""
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None, 4, 4, 1], name="x")
        y = tf.nn.conv2d(x, tf.ones([1, 1, 1, 2]), 1, "SAME", name="conv")
        tf.identity(y * tf.constant([2.0, 3.0]) + tf.constant([1.0, 0.0]), name="out")
        tf.identity(y, name="side")

    graph = _graph(tf, build)
    done = _apply(graph, ["fold-constants", "fold-batch-norms", "cleanup"], ["out", "side"])
    assert "Mul" in _ops(done) and {n.name: n.op for n in done.graph_def.node}["conv"] == "Conv2D"


def test_fuse_makes_tfs_fused_ops_for_tf_only(tf):
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None, 5, 5, 3], name="x")
        y = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, tf.ones([3, 3, 3, 2]) * 0.1, 1, "VALID"), [0.5, -0.5]))
        z = tf.nn.relu(tf.nn.bias_add(tf.matmul(tf.reshape(y, [-1, 18]), tf.ones([18, 4]) * 0.05),
                                      [0.0, 1.0, 2.0, 3.0]))
        tf.identity(z, name="out")

    graph = _graph(tf, build)
    folded = _apply(graph, ["fold-constants"], ["out"])
    fused = _apply(folded, ["fuse", "cleanup"], ["out"], target="tf")
    assert "_FusedConv2D" in _ops(fused) and "_FusedMatMul" in _ops(fused) and "BiasAdd" not in _ops(fused)
    kept = _apply(folded, ["fuse", "cleanup"], ["out"], target="opencv")
    assert "_FusedConv2D" not in _ops(kept) and "BiasAdd" in _ops(kept)
    xv = np.random.default_rng(5).standard_normal((2, 5, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(tf, fused, ["out"], {"x:0": xv})[0], _run(tf, graph, ["out"], {"x:0": xv})[0],
                               rtol=1e-5, atol=1e-6)

    def build64():  # _FusedMatMul takes no float64 ("not in the list of allowed values"): not fused
        x = v1.placeholder(tf.float64, [None, 4], name="x")
        tf.identity(tf.nn.relu(tf.nn.bias_add(tf.matmul(x, tf.ones([4, 2], tf.float64)),
                                              tf.constant([1.0, 2.0], tf.float64))), name="out")

    kept64 = _apply(_graph(tf, build64), ["fuse"], ["out"], target="tf")
    assert "_FusedMatMul" not in _ops(kept64)


def test_dedupe_merges_equal_constants_and_nodes_but_not_random_ones(tf):
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        a = x * tf.constant([1.5, 2.5]) + tf.random.uniform([2], seed=1)
        b = x * tf.constant([1.5, 2.5]) + tf.random.uniform([2], seed=1)
        tf.identity(a - b, name="out")

    graph = _graph(tf, build)
    done, changes = PASSES["dedupe"](graph, Context(["out"]))
    ops = _ops(done)
    assert ops.count("Mul") == 1 and ops.count("RandomUniform") == 2 and changes

    def large():  # 80 KB constants whose first 64 KiB agree: told apart by their whole bytes
        base = np.zeros(20000, np.float32)
        tail = base.copy()
        tail[-1] = 1.0
        x = v1.placeholder(tf.float32, [20000], name="x")
        tf.identity(x + tf.constant(base) + tf.constant(base.copy()) + tf.constant(tail), name="out")

    graph = _graph(tf, large)
    done, _ = PASSES["dedupe"](graph, Context(["out"]))
    assert _ops(graph).count("Const") == 3 and _ops(done).count("Const") == 2
    xv = np.ones(20000, np.float32)
    np.testing.assert_array_equal(_run(tf, done, ["out"], {"x:0": xv})[0], _run(tf, graph, ["out"], {"x:0": xv})[0])


def test_cleanup_splices_identities_and_drops_pure_noop_controls(tf):
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None], name="x")
        with tf.control_dependencies([tf.no_op(name="order")]):
            y = tf.identity(tf.identity(x) * 2.0)
        tf.identity(y, name="out")
        tf.identity(x, name="unused")

    graph = _graph(tf, build)
    done, changes = PASSES["cleanup"](graph, Context(["out"]))
    assert _ops(done) == ["Const", "Identity", "Mul", "Placeholder"]  # out itself stays: it is the output
    assert any("NoOp" in c for c in changes)
    np.testing.assert_array_equal(_run(tf, done, ["out"], {"x:0": np.array([1.0, 2.0], np.float32)})[0], [2.0, 4.0])


def test_a_pass_that_would_break_a_frame_does_not_fold_loop_constants(tf):
    """A TF1 while loop: constants inside its frame keep their control input from the pivot when their
    arithmetic folds, so TF still runs the loop."""
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [], name="x")
        _, acc = tf.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * (tf.constant(2.0) * 0.5 + 1.0)),
                               [tf.constant(0), x])
        tf.identity(acc, name="out")

    graph = _graph(tf, build)
    done = _apply(graph, list(PASSES), ["out"])
    assert "NextIteration" in _ops(done)
    assert _run(tf, done, ["out"], {"x:0": np.float32(1.5)})[0] == 12.0


def test_the_order_of_passes_is_fixed_and_names_are_checked(tmp_path):
    from conftest import FIXTURES

    from graphkit.optimize import optimize

    with pytest.raises(GraphkitError, match="unknown pass fold; the passes are strip-training"):
        optimize(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "o.pb", passes=["fold"])
    report = optimize(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "o.pb", passes=["cleanup,fold-constants"])
    assert [p.name for p in report.passes] == ["fold-constants", "cleanup"]
    assert load(tmp_path / "o.pb").graph is not None


def test_a_merge_with_several_live_inputs_loses_only_the_dead_ones(tf):
    """A hand-made three-way Merge (two inputs live once the Switch's predicate is constant): the dead
    input and its branch go, the Merge keeps two; one whose value_index is read keeps its dead input, so
    the graph stays whole."""
    from graphkit.proto import graph_pb2

    def merge_graph(read_index: bool) -> Graph:
        gd = graph_pb2.GraphDef()
        gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
        p = gd.node.add(name="p", op="Const")
        p.attr["dtype"].type = 10
        p.attr["value"].tensor.dtype = 10
        p.attr["value"].tensor.bool_val.append(True)
        for name, op, inputs in (("s", "Switch", ["x", "p"]), ("a", "Identity", ["s:1"]), ("b", "Identity", ["s"]),
                                 ("c", "Identity", ["x"]), ("m", "Merge", ["a", "b", "c"]), ("out", "Identity", ["m"])):
            node = gd.node.add(name=name, op=op, input=inputs)
            node.attr["T"].type = 1
        next(n for n in gd.node if n.name == "m").attr["N"].i = 3
        if read_index:
            gd.node.add(name="which", op="Identity", input=["m:1"]).attr["T"].type = 3
        return Graph(gd)

    done = _apply(merge_graph(False), ["dead-branches"], ["out"])
    nodes = {n.name: n for n in done.graph_def.node}
    assert "b" not in nodes and list(nodes["m"].input) == ["a", "c"] and nodes["m"].attr["N"].i == 2
    (got,) = _run(tf, done, ["out"], {"x:0": np.float32(3.0)})
    assert got == 3.0
    kept = _apply(merge_graph(True), ["dead-branches"], ["out", "which"])
    nodes = {n.name: n for n in kept.graph_def.node}
    assert list(nodes["m"].input) == ["a", "b", "c"] and "b" in nodes and "s" in nodes


def test_strided_slice_folds_as_tf_slices(tf):
    """The StridedSlice evaluator against TF's kernel on seeded random specs: begin/end/strides with
    negatives and out-of-range values, and every mask."""
    from graphkit.io.tensors import const_node
    from graphkit.optimize.fold import EVALUATORS
    from graphkit.proto import node_def_pb2

    rng = np.random.default_rng(16)
    x = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(1, 4))
        begin, end = rng.integers(-7, 8, n), rng.integers(-7, 8, n)
        strides = rng.choice([-2, -1, 1, 2, 3], n)
        masks = {k: int(rng.integers(0, 1 << n)) for k in ("begin_mask", "end_mask", "new_axis_mask",
                                                         "shrink_axis_mask")}
        masks["ellipsis_mask"] = int(rng.choice([0, 1 << int(rng.integers(0, n))]))
        node = node_def_pb2.NodeDef(name="s", op="StridedSlice")
        for key, value in masks.items():
            node.attr[key].i = value
        got = EVALUATORS["StridedSlice"](node, [x, begin, end, strides])
        try:
            want = tf.strided_slice(x, begin, end, strides, **masks).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            assert got is None, (begin, end, strides, masks)  # what TF refuses is not folded into a value
            continue
        if got is None:
            continue  # left to TF
        assert got.shape == want.shape and np.array_equal(got, want), (begin, end, strides, masks)
        checked += 1
    assert checked > 100
    assert const_node("c", x).attr["value"].tensor.dtype == 3


@pytest.mark.parametrize("op", ["AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "Neg", "Sqrt", "Rsqrt",
                                "Square", "Cast"])
def test_elementwise_evaluators_match_tfs_kernels(tf, op):
    """Seeded values (zeros, negatives, huge, subnormal, inf, NaN) through each evaluator and TF's kernel:
    bit-identical where graphkit folds (TF flushes subnormals; so does graphkit), and what it declines TF
    computes. Rsqrt is the exception: Eigen's vectorized rsqrt is an estimate refined by a Newton step,
    within an ulp of 1/sqrt, and differs by CPU -- numpy's 1/sqrt is within an ulp of it."""
    from graphkit.io import dtypes
    from graphkit.optimize.fold import EVALUATORS
    from graphkit.proto import node_def_pb2

    rng = np.random.default_rng(17)
    special = np.array([0.0, -0.0, 1.0, -1.0, 3e38, -3e38, 1e-40, np.inf, -np.inf, np.nan, 2.5, -2.5, 7e9])
    kinds = [np.float32, np.float16, np.int32, np.uint8] if op != "RealDiv" else [np.float32, np.float64]
    for dtype in kinds:
        base = np.concatenate([special, rng.standard_normal(19) * 100])
        with np.errstate(all="ignore"):
            a = base.astype(dtype) if np.dtype(dtype).kind == "f" else np.clip(np.nan_to_num(base), np.iinfo(dtype).min,
                                                                                  np.iinfo(dtype).max).astype(dtype)
        b = rng.permutation(a)
        node = node_def_pb2.NodeDef(name="n", op=op)
        if op == "Cast":
            for target in (np.int32, np.uint8, np.float16, np.bool_):
                node.attr["DstT"].type = dtypes.from_numpy(np.dtype(target))
                got = EVALUATORS[op](node, [a])
                if got is not None:
                    want = tf.cast(a, tf.as_dtype(target)).numpy()
                    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (dtype, target)
            continue
        unary = op in ("Neg", "Sqrt", "Rsqrt", "Square")
        if op in ("Sqrt", "Rsqrt") and np.dtype(dtype).kind != "f":
            continue
        got = EVALUATORS[op](node, [a] if unary else [a, b])
        if got is None:
            continue
        fn = {"AddV2": tf.add, "Sub": tf.subtract, "Mul": tf.multiply, "RealDiv": tf.math.truediv,
              "Maximum": tf.maximum, "Minimum": tf.minimum, "Neg": tf.negative, "Sqrt": tf.sqrt, "Rsqrt": tf.math.rsqrt,
              "Square": tf.square}[op]
        try:
            want = (fn(a) if unary else fn(a, b)).numpy()
        except tf.errors.InvalidArgumentError:
            continue  # an op TF does not have for this dtype: no graph holds it
        assert got.dtype == want.dtype, (op, dtype)
        if op == "Rsqrt":
            finite = np.isfinite(want) & (want != 0)
            np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=1)
            np.testing.assert_array_equal(got[~finite], want[~finite])
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{op} {dtype}")
