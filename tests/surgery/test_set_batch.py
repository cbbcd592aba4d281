"""set-batch: the rewritten graph runs at any batch and gives, per sample, what the original gave."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_graph, shared

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.io import load, validate
from graphkit.surgery import set_batch


@pytest.fixture(scope="module")
def batch4(tf, tmp_path_factory):
    """A graph that hard-codes batch 4: Reshape [4, 256], a zeros [4, 5] constant (folded to a Const), a
    Tile of a [1, 5] row by [4, 1], a slice [0:4], and a Fill of shape [4, 5]."""
    v1 = tf.compat.v1
    rng = np.random.RandomState(0)
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [4, 8, 8, 2], name="x")
        h = tf.nn.relu(tf.nn.conv2d(x, rng.randn(3, 3, 2, 4).astype(np.float32), 1, "SAME"))
        flat = tf.reshape(h, [4, 256], name="flatten")
        dense = tf.matmul(flat, rng.randn(256, 5).astype(np.float32) * 0.1)
        bias = tf.tile(tf.constant(rng.randn(1, 5).astype(np.float32)), [4, 1], name="bias")
        half = tf.zeros([4, 5]) + 0.5
        filled = tf.fill(tf.constant([4, 5]), 2.0, name="filled")
        logits = (dense + bias + half) * filled
        tf.nn.softmax(logits[0:4], name="probs")
    path = tmp_path_factory.mktemp("batch") / "batch4.pb"
    path.write_bytes(g.as_graph_def(add_shapes=True).SerializeToString())
    return path


def _per_sample_reference(tf, path, samples, batch, output, name="x:0"):
    """The original graph run in batches of its own size (the last one padded), rows kept per sample."""
    rows = []
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        rows.append(run_graph(tf, path, [output], {name: padded})[0][: len(chunk)])
    return np.concatenate(rows)


@pytest.mark.parametrize("size", [None, 7])
def test_hard_coded_batch_becomes_variable(tf, batch4, tmp_path, size):
    out = tmp_path / "dyn.pb"
    report = set_batch(batch4, out, size=size)
    ours = load(out).graph.graph_def
    assert validate(ours) == []
    x = next(n for n in ours.node if n.name == "x")
    assert [d.size for d in x.attr["shape"].shape.dim] == [size or -1, 8, 8, 2]
    assert {"flatten", "bias", "filled", "strided_slice"} <= set(report.rewritten)
    assert not [n for n in report.notes if "not proved safe" in n]
    samples = np.random.RandomState(1).randn(7, 8, 8, 2).astype(np.float32)
    want = _per_sample_reference(tf, batch4, samples, 4, "probs")
    for batch in ([1, 7] if size is None else [7]):
        got = run_graph(tf, out, ["probs"], {"x:0": samples[:batch]})[0]
        np.testing.assert_allclose(got, want[:batch], rtol=1e-5, atol=1e-7)


def test_per_sample_constants_are_reported_not_hidden(tf, tmp_path):
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [3, 2], name="x")
        tf.add(x, tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2), name="per_sample"), name="y")
    src = tmp_path / "g.pb"
    src.write_bytes(g.as_graph_def().SerializeToString())
    report = set_batch(src, tmp_path / "o.pb")
    assert any("not proved safe: 'per_sample'" in n and "'y' reads it" in n for n in report.notes)


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_tf2onnx_rnn_graphs(tf, tmp_path, model):
    """Static RNNs with a [?, 784] input and dropout: fix the batch, run; make it variable again, run at 1 and 7."""
    src = shared(f"tf2onnx_models/{model}/frozen.pb")
    fixed = tmp_path / "fixed.pb"
    set_batch(src, fixed, size=3, inputs=["X[?,784]"])  # gru's X has no recorded shape
    assert [d.size for d in next(n for n in load(fixed).graph.graph_def.node if n.name == "X")
            .attr["shape"].shape.dim] == [3, 784]
    samples = np.random.RandomState(2).rand(7, 784).astype(np.float32)
    feed = {"keep_prob:0": 1.0}
    want = run_graph(tf, src, ["output"], {"X:0": samples, **feed})[0]
    np.testing.assert_allclose(run_graph(tf, fixed, ["output"], {"X:0": samples[:3], **feed})[0], want[:3],
                               rtol=1e-5, atol=1e-6)
    back = tmp_path / "back.pb"
    set_batch(fixed, back, inputs=["X"])
    for batch in (1, 7):
        np.testing.assert_allclose(run_graph(tf, back, ["output"], {"X:0": samples[:batch], **feed})[0], want[:batch],
                                   rtol=1e-5, atol=1e-6)


def test_errors_and_cli(runner, batch4, tmp_path):
    with pytest.raises(GraphkitError, match="at least 1"):
        set_batch(batch4, tmp_path / "o.pb", size=0)
    with pytest.raises(GraphkitError, match="is not a Placeholder"):
        set_batch(batch4, tmp_path / "o.pb", inputs=["flatten"])
    result = runner.invoke(cli, ["set-batch", str(batch4), str(tmp_path / "o.pb"), "--json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data["command"] == "set-batch" and data["inputs"][0]["shape"] == [-1, 8, 8, 2]  # lists in JSON


def test_inputs_without_a_batch_are_left_alone_and_listed(tf, tmp_path):
    """Issue 12.2: mtcnn's image input is one HWC image (the graph adds the batch with ExpandDims) and
    thresholds [3] is a vector of settings: set-batch changes neither, says why, and --inputs still forces."""
    src = shared("tf_mtcnn_blaueck/mtcnn.pb")
    with pytest.raises(GraphkitError, match=r"input: the graph adds the batch itself.*thresholds: rank 1"):
        set_batch(src, tmp_path / "out.pb", size=2)
    assert not (tmp_path / "out.pb").exists()


def test_a_batch_input_beside_settings_changes_alone(tf, tmp_path):
    """A batched image [4, 8, 8, 2] with a rank-1 setting and an odd-sized matrix input: only the image
    changes; the result runs at two batch sizes."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [4, 6], name="x")
        scale = v1.placeholder(tf.float32, [6], name="scale")
        mix = v1.placeholder(tf.float32, [6, 6], name="mix")
        tf.identity(tf.matmul(x * scale, mix), name="y")
    path = tmp_path / "g.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    report = set_batch(path, tmp_path / "out.pb")
    assert report.rewritten == ["x"]
    assert any("left 'scale' alone: rank 1" in n for n in report.notes)
    assert any("left 'mix' alone: dim 0 is 6, not the batch 4" in n for n in report.notes)
    for batch in (1, 7):
        feed = {"x:0": np.ones((batch, 6), np.float32), "scale:0": np.ones(6, np.float32),
                "mix:0": np.eye(6, dtype=np.float32)}
        assert run_graph(tf, tmp_path / "out.pb", ["y"], feed)[0].shape == (batch, 6)


def test_splats_stay_splats(tmp_path):
    """Issue 13.8: set-batch expanded an [8, 2^26] splat (2.7 GB) and inspect --tensor of it reached 6.4 GB.
    Both now stay within a small, fixed memory (measured in a child process)."""
    import json
    import subprocess
    import sys

    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    for d in (8, 1 << 26):
        x.attr["shape"].shape.dim.add().size = d
    c = gd.node.add(name="c", op="Const")
    c.attr["dtype"].type = 1
    c.attr["value"].tensor.dtype = 1
    for d in (8, 1 << 26):
        c.attr["value"].tensor.tensor_shape.dim.add().size = d
    c.attr["value"].tensor.float_val.append(0.5)
    gd.node.add(name="y", op="AddV2", input=["x", "c"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's (this test process holds TF)
    probe = ("import re, sys, json; from graphkit.cli import main; sys.argv = ['graphkit'] + sys.argv[1:]\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
             "print(json.dumps({'rss_mb': hwm / 1024}))")

    def run(*args):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        return proc.stdout.strip().splitlines(), proc.stderr

    lines, err = run("set-batch", str(tmp_path / "g.pb"), str(tmp_path / "b.pb"), "--size", "2", "-q")
    assert json.loads(lines[-1])["rss_mb"] < 400, err
    out = {n.name: n.op for n in __import__("graphkit").load(tmp_path / "b.pb").graph.graph_def.node}
    assert out["c/batch_fill"] == "Fill"
    lines, err = run("inspect", str(tmp_path / "g.pb"), "--tensor", "c", "--json")
    value = json.loads("\n".join(lines[:-1]))
    assert value["min"] == value["max"] == value["mean"] == 0.5 and value["splat"] and value["values"] is None
    assert json.loads(lines[-1])["rss_mb"] < 400, err


def _ctx(nodes, region, old=4, size=None):
    from graphkit.io import GraphIndex
    from graphkit.proto import graph_pb2
    from graphkit.surgery.batch import _Builder, _Rewrite

    gd = graph_pb2.GraphDef()
    gd.node.extend(nodes)
    index = GraphIndex(gd)
    return gd, _Rewrite(index, _Builder(gd, set(index.nodes)), region, old, size)


def _const(name, value):
    from graphkit.io.tensors import const_node

    return const_node(name, np.asarray(value))


def test_each_set_batch_rule_alone():
    """Issue 14.5: the rewrites are a table of rules, each tried here on one node."""
    from graphkit.proto import node_def_pb2
    from graphkit.surgery.batch import _const_operand_rule, _shape_operand_rule, _slice_rule

    x = node_def_pb2.NodeDef(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    reshape = node_def_pb2.NodeDef(name="r", op="Reshape", input=["x", "shape"])
    gd, ctx = _ctx([x, _const("shape", np.array([4, 6], np.int32)), reshape], {"x": "x", "r": "x"})
    out = _shape_operand_rule(ctx, "r", ctx.index.nodes["r"], "x")
    assert out.rewrites == 1 and ctx.index.nodes["r"].input[1] != "shape" and "shape" in ctx.handled
    new = {n.name: n for n in gd.node}[ctx.index.nodes["r"].input[1]]
    from graphkit.io.tensors import to_numpy

    assert to_numpy(new.attr["value"].tensor).tolist() == [-1, 6]  # a Reshape takes -1

    sl = node_def_pb2.NodeDef(name="s", op="StridedSlice", input=["x", "b", "e", "st"])
    for mask in ("begin_mask", "end_mask", "shrink_axis_mask"):
        sl.attr[mask].i = 0
    gd, ctx = _ctx([x, _const("b", np.array([0], np.int32)), _const("e", np.array([4], np.int32)),
                    _const("st", np.array([1], np.int32)), sl], {"x": "x", "s": "x"})
    assert _slice_rule(ctx, "s", ctx.index.nodes["s"], "x").rewrites == 1
    assert ctx.index.nodes["s"].attr["end_mask"].i & 1  # to the end of axis 0, whatever the batch

    add = node_def_pb2.NodeDef(name="a", op="AddV2", input=["x", "half", "perm"])
    gd, ctx = _ctx([x, _const("half", np.full((4, 3), 0.5, np.float32)),
                    _const("perm", np.arange(12, dtype=np.float32).reshape(4, 3)), add], {"x": "x", "a": "x"})
    out = _const_operand_rule(ctx, "a", ctx.index.nodes["a"], "x")
    assert out.rewrites == 1 and ctx.index.nodes["a"].input[1].endswith("batch_fill")  # one value: a Fill
    assert len(out.notes) == 1 and "'perm'" in out.notes[0] and "per-sample values" in out.notes[0]
