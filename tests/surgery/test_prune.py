"""prune against TF's extract_sub_graph / strip_unused, on generated graphs and real ones."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, read_graph, run_graph, shared

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.io import load, validate
from graphkit.surgery import prune


def _names(gd):
    return {n.name for n in gd.node}


def _check(path):
    gd = load(path).graph.graph_def
    assert validate(gd) == []
    return gd


def test_equals_extract_sub_graph_on_a_training_meta_graph(tf, tmp_path):
    """A checkpoint-backed training graph (optimizer, saver) pruned to the output: TF's node set; the
    checkpoint's weights are never needed."""
    src = fixture_checkpoint("mlp_ref")
    report = prune(str(src) + ".meta", tmp_path / "p.pb", outputs=["output"])
    theirs = tf.compat.v1.graph_util.extract_sub_graph(_tf_meta_graph(tf, src), ["output"])
    ours = _check(tmp_path / "p.pb")
    assert _names(ours) == _names(theirs)
    assert report.nodes_before > report.nodes_after == len(ours.node)
    assert set(report.removed) == {n for n in _names(_tf_meta_graph(tf, src))} - _names(ours)


def test_checkpoint_in_meta_graph_out_still_restores(tf, tmp_path):
    """prune on a checkpoint (graph-only: no weights read) writing a .meta: the saver stays, TF restores the
    original checkpoint into the pruned graph; the train op and the optimizer updates are gone."""
    src = fixture_checkpoint("mlp_ref")
    out = tmp_path / "infer.meta"
    report = prune(src, out, outputs=["output"])
    assert "train" in report.removed
    v1 = tf.compat.v1
    xv = np.random.RandomState(5).randn(2, 8).astype(np.float32)
    values = []
    for meta in (str(src) + ".meta", str(out)):
        with tf.Graph().as_default() as g, v1.Session() as sess:
            v1.train.import_meta_graph(meta).restore(sess, str(src))
            values.append(sess.run("output:0", {"x:0": xv}))
            ops = {op.type for op in g.get_operations()}
    assert not any(op.startswith("Apply") for op in ops)
    np.testing.assert_array_equal(values[0], values[1])


def _tf_meta_graph(tf, prefix):
    meta = tf.compat.v1.MetaGraphDef()
    meta.ParseFromString(Path(str(prefix) + ".meta").read_bytes())
    return meta.graph_def


def test_mtcnn_inner_output_and_cut_at_inner_input(tf, tmp_path):
    path = shared("tf_mtcnn_blaueck/mtcnn.pb")
    original = read_graph(tf, path)
    inner = "pnet/conv4-2/BiasAdd"  # inside the TF1 while loop of the P-Net stage
    if inner not in _names(original):
        inner = next(n.name for n in original.node if n.op == "BiasAdd")
    prune(path, tmp_path / "inner.pb", outputs=[inner])
    theirs = tf.compat.v1.graph_util.extract_sub_graph(original, [inner])
    assert _names(_check(tmp_path / "inner.pb")) == _names(theirs)
    assert {"Enter", "Merge", "NextIteration"} <= {n.op for n in theirs.node}

    # cut the R-Net stage (inside a tf.cond) at its crops and its predicate: P-Net, its while loop and the
    # NMS above go; R-Net's output is unchanged
    cut, pred, out = "rnet/cond/CropAndResize", "rnet/Greater", "rnet/cond/prob1"
    report = prune(path, tmp_path / "cut.pb", outputs=[out], inputs=[f"{cut}:0", pred],
                   input_shapes={cut: "?,24,24,3"})
    ours = _check(tmp_path / "cut.pb")
    node = next(n for n in ours.node if n.name == cut)
    assert node.op == "Placeholder" and [d.size for d in node.attr["shape"].shape.dim] == [-1, 24, 24, 3]
    assert next(n for n in ours.node if n.name == pred).attr["dtype"].type == 10  # bool, from Greater
    assert not {"Enter", "NonMaxSuppressionV2", "TensorArrayV3"} & {n.op for n in ours.node}
    assert report.nodes_after < report.nodes_before / 2
    feed = {f"{cut}:0": np.random.RandomState(0).rand(5, 24, 24, 3).astype(np.float32), f"{pred}:0": True}
    want = run_graph(tf, original, [out], feed)
    got = run_graph(tf, tmp_path / "cut.pb", [out], feed)
    np.testing.assert_array_equal(got[0], want[0])


def test_while_loop_pbtxt_keeps_its_loop(tf, tmp_path):
    path = shared("tf_grappler_pbtxt/while_loop.pbtxt")
    original = read_graph(tf, path)
    out = tmp_path / "loop.pbtxt"
    report = prune(path, out)  # outputs: the likely ones
    ours = _check(out)
    theirs = tf.compat.v1.graph_util.extract_sub_graph(original, report.outputs)
    assert _names(ours) == _names(theirs)
    assert "NextIteration" in {n.op for n in ours.node}
    fetch = [o for o in report.outputs if o in _names(ours)][0]
    assert run_graph(tf, out, [fetch], {}) == run_graph(tf, original, [fetch], {})


def _cut(tf, tmp_path, **options):
    """The small graph written to a file and pruned with ``options``: (original, result)."""
    gd = _small_graph(tf)
    src = tmp_path / "g.pb"
    src.write_bytes(gd.SerializeToString())
    prune(src, tmp_path / "cut.pb", **options)
    return gd, _check(tmp_path / "cut.pb")


def test_cut_names_dtype_from_the_producer_and_shape_from_output_shapes(tf, tmp_path):
    gd, ours = _cut(tf, tmp_path, outputs=["out"], inputs=["hidden"])
    hidden = next(n for n in ours.node if n.name == "hidden")
    assert hidden.op == "Placeholder" and hidden.attr["dtype"].type == 1
    assert [d.size for d in hidden.attr["shape"].shape.dim] == [-1, 3]
    assert "x" not in _names(ours) and "w1" not in _names(ours)
    h = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(run_graph(tf, tmp_path / "cut.pb", ["out"], {"hidden:0": h})[0],
                               run_graph(tf, gd, ["out"], {"hidden:0": h})[0])


def test_cut_at_a_second_output_gets_its_own_placeholder(tf, tmp_path):
    gd, ours = _cut(tf, tmp_path, outputs=["both"], inputs=["split:1:float32[?,1]"])
    assert "split_1" in _names(ours) and "split" in _names(ours)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    part = np.full((2, 1), 7, np.float32)
    got = run_graph(tf, tmp_path / "cut.pb", ["both"], {"x:0": x, "split_1:0": part})[0]
    want = run_graph(tf, gd, ["both"], {"x:0": x, "split:1": part})[0]
    np.testing.assert_array_equal(got, want)


def _small_graph(tf):
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w1 = tf.constant(np.eye(3, dtype=np.float32) * 2, name="w1")
        hidden = tf.nn.relu(tf.matmul(x, w1), name="hidden")
        checked = tf.debugging.check_numerics(hidden, "bad", name="checked")
        ident = tf.identity(checked, name="ident")
        assert_op = tf.debugging.assert_all_finite(ident, "finite", name="assert_finite")
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(ident > -1), [ident], name="guard")]):
            guarded = tf.identity(ident, name="guarded")
        tf.add(guarded, assert_op, name="out")
        a, b = tf.split(x, [2, 1], axis=1, name="split")
        tf.concat([a, b * 2.0], axis=1, name="both")
    return g.as_graph_def(add_shapes=True)


def test_strip_training_fixes_tf_remove_training_nodes_bugs(tf, tmp_path):
    gd = _small_graph(tf)
    # consumers written 'ident:0' are TF's dangling-input bug
    for node in gd.node:
        node.input[:] = ["ident:0" if i == "ident" else i for i in node.input]
    gd.library.function.add().signature.name = "unused_fn"
    src = tmp_path / "g.pb"
    src.write_bytes(gd.SerializeToString())
    report = prune(src, tmp_path / "s.pb", outputs=["out"], strip_training=True)
    ours = _check(tmp_path / "s.pb")
    ops = {n.op for n in ours.node}
    assert not ops & {"CheckNumerics", "Assert"} and "ident" not in _names(ours)
    assert ours.versions.producer == gd.versions.producer and report.nodes_after == len(ours.node)
    x = np.random.RandomState(1).randn(4, 3).astype(np.float32)
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "s.pb", ["out"], {"x:0": x})[0],
                                  run_graph(tf, gd, ["out"], {"x:0": x})[0])
    theirs = tf.compat.v1.graph_util.remove_training_nodes(gd, ["out"])
    assert theirs.versions.producer == 0 and not theirs.library.function  # the oracle drops both
    assert not ours.library.function  # nothing references a function any more: dropped


def test_errors(tmp_path):
    src = FIXTURES / "frozen" / "sigmoid.pb"
    with pytest.raises(GraphkitError, match="no node named 'nope'"):
        prune(src, tmp_path / "a.pb", outputs=["nope"])
    with pytest.raises(GraphkitError, match="--input-shape names"):
        prune(src, tmp_path / "a.pb", outputs=["y"], inputs=["x"], input_shapes={"z": "1,2"})
    with pytest.raises(GraphkitError, match="overwrite an input"):
        prune(src, src, outputs=["y"])
    from graphkit.proto import graph_pb2

    empty = graph_pb2.GraphDef()
    empty.versions.producer = 1700  # the corpus (seed 20): a file with no nodes gave an empty output, exit 0
    (tmp_path / "empty.pb").write_bytes(empty.SerializeToString())
    with pytest.raises(GraphkitError, match="holds no nodes"):
        prune(tmp_path / "empty.pb", tmp_path / "a.pb")
    assert not (tmp_path / "a.pb").exists()


def test_cli(runner, tmp_path):
    src = FIXTURES / "frozen" / "sigmoid.pb"
    result = runner.invoke(cli, ["prune", str(src), str(tmp_path / "o.pb"), "--outputs", "y", "--json"])
    assert result.exit_code == 0, result.output
    assert '"command": "prune"' in result.output
    result = runner.invoke(cli, ["prune", str(src), str(tmp_path / "o.pb"), "--outputs", "nope"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    result = runner.invoke(cli, ["prune", str(src), str(tmp_path / "o.pb"), "--input-shape", "nodims"])
    assert result.exit_code == 2


@pytest.mark.parametrize("bad_input, output, says", [
    (None, "y", "more than one node named 'y'"),
    ("x:3", "z", "reads 'x:3', but 'x' (Placeholder) has 1 output"),
    ("x:abc", "z", "malformed input 'x:abc'"),
    ("x:-1", "z", "malformed input 'x:-1'"),
    ("x:0:1", "z", "malformed input 'x:0:1'"),
    ("CYCLE", "z", "a cycle that is not a TF1 while loop runs through z, w"),
    ("DTYPE", "z", "node 'z' has attr 'T' = 999, which is no DataType"),
    ("DEVICE", "z", "node 'z': device '/device2CPU:0' has a part 'device2CPU' TF does not know"),
    ("NO-ATTR", "z", "node 'z' (Identity) lacks attr 'T', which its op requires"),
    ("CONST-DTYPE", "z", "node 'c' (Const) has dtype 1 but a value of dtype 3"),
    ("BAD-CLASS", "z", "node 'z' is colocated with 'x\\xff', which is not in the graph"),
    ("CLASS-INTS", "z", "node 'z' has a _class attr that is not a list of strings"),
    ("ARITY", "z", "node 'z' (AddV2) has 1 data inputs; its op takes 2"),
    ("CLASS-UTF8", "z", "node 'z' has a _class entry b'lo\\xe3:@x' that is not UTF-8"),
    ("ARITY-CONTROL", "z", "node 'z' (AddV2) has 1 data inputs; its op takes 2"),
    ("NAME-NEWLINE", "z", "'w\n' is not a valid node name"),
])
def test_what_tf_refuses_is_refused_on_both_paths(tmp_path, monkeypatch, bad_input, output, says):
    """Issue 13.12: duplicates, malformed references, cycles and unknown DataType enums were passed through
    (or, for duplicates, one kept); so were, the corpus found, bad device strings and missing attrs."""
    import graphkit.io.scan as scan
    from graphkit.errors import GraphkitError
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
    gd.node.add(name="y", op="Identity", input=["x"]).attr["T"].type = 1
    if bad_input is None:
        gd.node.add(name="y", op="Relu", input=["x"]).attr["T"].type = 1
    elif bad_input == "CYCLE":
        gd.node.add(name="z", op="AddV2", input=["x", "w"]).attr["T"].type = 1
        gd.node.add(name="w", op="Identity", input=["z"]).attr["T"].type = 1
    elif bad_input == "DTYPE":
        gd.node.add(name="z", op="Identity", input=["x"]).attr["T"].type = 999
    elif bad_input == "DEVICE":
        gd.node.add(name="z", op="Identity", input=["x"], device="/device2CPU:0").attr["T"].type = 1
    elif bad_input == "NO-ATTR":
        gd.node.add(name="z", op="Identity", input=["x"])
    elif bad_input == "BAD-CLASS":  # the corpus: a bit flip in a _class entry gave a UnicodeDecodeError
        z = gd.node.add(name="z", op="Identity", input=["x"])
        z.attr["T"].type = 1
        z.attr["_class"].list.s.append(b"loc:@x\xff")
    elif bad_input == "CLASS-UTF8":  # the corpus (seeds 26, 27): a flipped byte in a _class entry
        z = gd.node.add(name="z", op="Identity", input=["x"])
        z.attr["T"].type = 1
        z.attr["_class"].list.s.append(b"lo\xe3:@x")
    elif bad_input == "ARITY":  # the corpus (seed 22): a flipped op name made an Identity an AddV2
        gd.node.add(name="z", op="AddV2", input=["x"]).attr["T"].type = 1
    elif bad_input == "ARITY-CONTROL":  # two inputs, one of them a control input
        gd.node.add(name="z", op="AddV2", input=["x", "^y"]).attr["T"].type = 1
    elif bad_input == "NAME-NEWLINE":  # a name TF's IsValidNodeName refuses ('$' let a final newline through)
        gd.node.add(name="w\n", op="Identity", input=["x"]).attr["T"].type = 1
        gd.node.add(name="z", op="Identity", input=["w\n"]).attr["T"].type = 1
    elif bad_input == "CLASS-INTS":  # the corpus (seed 17): TF's importer fails reading colocations from it
        z = gd.node.add(name="z", op="Identity", input=["x"])
        z.attr["T"].type = 1
        z.attr["_class"].list.i.append(108)
    elif bad_input == "CONST-DTYPE":
        c = gd.node.add(name="c", op="Const")
        c.attr["dtype"].type = 1
        c.attr["value"].tensor.dtype = 3
        gd.node.add(name="z", op="AddV2", input=["x", "c"]).attr["T"].type = 1
    else:
        gd.node.add(name="z", op="Identity", input=[bad_input]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    for scanner in (scan._wirescan, None):
        monkeypatch.setattr(scan, "_wirescan", scanner)
        with pytest.raises(GraphkitError, match=re.escape(says)):
            prune(tmp_path / "g.pb", tmp_path / "out.pb", outputs=[output])
        assert not (tmp_path / "out.pb").exists()


def test_no_outputs_to_be_found_is_an_error_not_an_empty_graph(tmp_path, monkeypatch):
    """The corpus found prune writing an empty graph with exit 0 when no output could be told (a graph
    that is one cycle has no sink): it now asks for --outputs, on both paths."""
    import graphkit.io.scan as scan
    from graphkit.errors import GraphkitError
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.node.add(name="a", op="Identity", input=["b"]).attr["T"].type = 1
    gd.node.add(name="b", op="Identity", input=["a"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    for scanner in (scan._wirescan, None):
        monkeypatch.setattr(scan, "_wirescan", scanner)
        with pytest.raises(GraphkitError, match="cannot tell the graph's outputs .* name them with --outputs"):
            prune(tmp_path / "g.pb", tmp_path / "out.pb")
        assert not (tmp_path / "out.pb").exists()
