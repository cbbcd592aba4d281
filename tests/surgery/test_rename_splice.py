"""rename and splice, checked by running the results in TF."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, read_graph, run_graph

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.freeze import freeze
from graphkit.io import load, validate
from graphkit.surgery import rename, splice

SIGMOID = FIXTURES / "frozen" / "sigmoid.pb"


def test_strip_the_import_prefix(tf, tmp_path):
    """A graph saved after tf.import_graph_def carries 'import/' everywhere, colocations included."""
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.import_graph_def(read_graph(tf, SIGMOID))
        x = g.get_tensor_by_name("import/x:0")
        ready = tf.no_op(name="import/ready")
        with g.colocate_with(x.op), tf.control_dependencies([ready]):
            tf.identity(g.get_tensor_by_name("import/y:0") * 2.0, name="import/twice")
    src = tmp_path / "imported.pb"
    src.write_bytes(g.as_graph_def().SerializeToString())
    report = rename(src, tmp_path / "clean.pb", strip_prefix="import/")
    ours = load(tmp_path / "clean.pb").graph.graph_def
    assert validate(ours) == [] and not any(n.name.startswith("import/") for n in ours.node)
    assert len(report.rewritten) == 10 and report.removed == [] and report.added == []  # sigmoid's 9 nodes
    twice = next(n for n in ours.node if n.name == "twice")
    assert any("^ready" in n.input for n in ours.node) and list(twice.attr["_class"].list.s) == [b"loc:@x"]
    xv = np.random.RandomState(0).randn(2, 3).astype(np.float32)
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "clean.pb", ["twice"], {"x:0": xv})[0],
                                  run_graph(tf, src, ["import/twice"], {"import/x:0": xv})[0])


def test_add_prefix_to_a_graph_with_a_while_loop(tf, tmp_path):
    frozen = tmp_path / "cf.pb"
    freeze(fixture_checkpoint("control_flow"), frozen, outputs=["output"])
    rename(frozen, tmp_path / "p.pb", add_prefix="net/")
    ours = load(tmp_path / "p.pb").graph.graph_def
    frames = {n.attr["frame_name"].s for n in ours.node if n.op == "Enter"}
    assert frames and all(f.startswith(b"net/") for f in frames)
    xv = np.random.RandomState(1).randn(3, 4).astype(np.float32)
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "p.pb", ["net/output"], {"net/x:0": xv})[0],
                                  run_graph(tf, frozen, ["output"], {"x:0": xv})[0])


def test_collisions_are_errors(tmp_path):
    with pytest.raises(GraphkitError, match="collide: 'x' and 'y' -> 'v'"):
        rename(SIGMOID, tmp_path / "c.pb", replace=[("^[xy]$", "v")])
    with pytest.raises(GraphkitError, match="not a regular expression"):
        rename(SIGMOID, tmp_path / "c.pb", replace=[("(", "v")])
    assert not (tmp_path / "c.pb").exists()


def test_saved_model_signatures_follow(tf, tmp_path):
    out = tmp_path / "renamed_model"
    rename(FIXTURES / "saved_model_tf1", out, add_prefix="m/")
    model = load(out)
    sig = model.meta_graph.signature_def["serving_default"]
    assert sig.inputs["x"].name == "m/x:0" and sig.outputs["y"].name.startswith("m/")
    v1 = tf.compat.v1
    xv = np.random.RandomState(2).randn(4, 3).astype(np.float32)
    results = []
    for path in (FIXTURES / "saved_model_tf1", out):
        with tf.Graph().as_default(), v1.Session() as sess:
            meta = v1.saved_model.loader.load(sess, ["serve"], str(path))
            s = meta.signature_def["serving_default"]
            results.append(sess.run(s.outputs["y"].name, {s.inputs["x"].name: xv}))
    np.testing.assert_array_equal(results[0], results[1])


def test_meta_graph_renamed_still_restores_the_checkpoint(tf, tmp_path):
    """Saver, variables collections and the train op follow the rename; the checkpoint keys do not change."""
    prefix = str(fixture_checkpoint("mlp_ref"))
    out = tmp_path / "renamed.meta"
    rename(prefix + ".meta", out, add_prefix="m/")
    v1 = tf.compat.v1
    xv = np.random.RandomState(3).randn(2, 8).astype(np.float32)
    values = []
    for meta, name in ((prefix + ".meta", ""), (str(out), "m/")):
        with tf.Graph().as_default(), v1.Session() as sess:
            v1.train.import_meta_graph(meta).restore(sess, prefix)
            values.append(sess.run(f"{name}output:0", {f"{name}x:0": xv}))
    np.testing.assert_array_equal(values[0], values[1])


def _preprocess(tf, tmp_path):
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        raw = v1.placeholder(tf.uint8, [None, 3], name="raw")
        tf.identity((tf.cast(raw, tf.float32) - 127.5) / 127.5, name="x")
    path = tmp_path / "pre.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path


def test_splice_preprocessing_into_a_model(tf, tmp_path):
    pre = _preprocess(tf, tmp_path)
    report = splice(pre, SIGMOID, tmp_path / "s.pb", connect={"x:0": "x:0"}, prefix_a="pre/")
    ours = load(tmp_path / "s.pb").graph.graph_def
    assert validate(ours) == []
    assert [i["name"] for i in report.inputs] == ["pre/raw"] and report.outputs == ["y"]
    assert "x" not in {n.name for n in ours.node}  # B's own input went away
    raw = np.array([[0, 128, 255], [10, 20, 30]], np.uint8)
    normalized = run_graph(tf, pre, ["x"], {"raw:0": raw})[0]
    want = run_graph(tf, SIGMOID, ["y"], {"x:0": normalized})[0]
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "s.pb", ["y"], {"pre/raw:0": raw})[0], want)


def test_splice_a_model_with_itself_needs_a_prefix(tf, tmp_path):
    with pytest.raises(GraphkitError, match="both have nodes named w, w/read, b, b/read, .*use --prefix-a or --pre"):
        splice(SIGMOID, SIGMOID, tmp_path / "s.pb", connect={"x:0": "x:0"})
    report = splice(SIGMOID, SIGMOID, tmp_path / "s.pb", connect={"x:0": "x:0"}, prefix_b="second/")
    assert report.outputs == ["second/y"] and [i["name"] for i in report.inputs] == ["x"]
    xv = np.random.RandomState(4).randn(5, 3).astype(np.float32)
    a, b = run_graph(tf, tmp_path / "s.pb", ["y", "second/y"], {"x:0": xv})
    np.testing.assert_allclose(a, run_graph(tf, SIGMOID, ["y"], {"x:0": xv})[0], rtol=1e-6)
    np.testing.assert_allclose(b, a, rtol=1e-6)


def test_splice_checks_dtypes_and_keys(tf, tmp_path):
    pre = _preprocess(tf, tmp_path)
    with pytest.raises(GraphkitError, match="takes float32 from 'x:0', but A's 'raw' is uint8"):
        splice(pre, SIGMOID, tmp_path / "s.pb", connect={"raw": "x"}, prefix_a="a/")
    with pytest.raises(GraphkitError, match="nothing in the graph reads 'y:0'"):
        splice(pre, SIGMOID, tmp_path / "s.pb", connect={"x": "y"}, prefix_a="a/")


def test_cli(runner, tf, tmp_path):
    pre = _preprocess(tf, tmp_path)
    result = runner.invoke(cli, ["splice", str(pre), str(SIGMOID), str(tmp_path / "o.pb"), "--connect", "x:0=x:0",
                                 "--prefix-b", "model/"])
    assert result.exit_code == 0, result.output
    assert "inputs: raw uint8[?,3]" in result.output and "outputs: model/y" in result.output
    result = runner.invoke(cli, ["rename", str(SIGMOID), str(tmp_path / "r.pb"), "--add-prefix", "a/", "--json"])
    assert result.exit_code == 0 and '"command": "rename"' in result.output
    result = runner.invoke(cli, ["rename", str(SIGMOID), str(tmp_path / "r2.pb"), "--replace", "noequals"])
    assert result.exit_code == 2


def test_a_renamed_checkpoint_graph_still_restores_and_keeps_its_roles(tf, tmp_path):
    """Issue 12.6: rename a checkpoint-backed graph; the saver's keys stay, so freeze reads them and the
    original checkpoint restores; saver and gradient nodes under the prefix are still not outputs."""
    from conftest import fixture_checkpoint

    from graphkit.freeze import freeze
    from graphkit.io import load
    from graphkit.io.roles import likely_outputs

    ckpt = fixture_checkpoint("mlp_ref")
    rename(ckpt, tmp_path / "renamed.meta", add_prefix="net/")
    report = freeze(tmp_path / "renamed.meta", tmp_path / "f.pb", checkpoint=ckpt, verify=True)
    assert report.outputs == ["net/output"] and report.verified[0].ok
    assert "dense1/weights" in report.frozen  # the checkpoint's key, not the node's new name
    model = load(tmp_path / "renamed.meta")
    names = [o.name for o in likely_outputs(model.graph.graph_def, model.meta_graph)]
    assert not [n for n in names if n.startswith(("net/save", "net/gradients"))]


def test_a_malformed_reference_names_the_file(tmp_path):
    """Issue 13.13: rename's reference error named no file."""
    from graphkit.errors import GraphkitError
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
    gd.node.add(name="z", op="Identity", input=["x:0:1"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    with pytest.raises(GraphkitError) as err:
        rename(tmp_path / "g.pb", tmp_path / "o.pb", add_prefix="a/")
    assert str(err.value).startswith(f"{tmp_path / 'g.pb'}: 'x:0:1' is not a tensor reference")


def test_rename_carries_the_checkpoint_along(tf, tmp_path):
    """rename --checkpoint-out: the checkpoint's keys renamed like the nodes and the saver reading them, so
    the renamed .meta and the new checkpoint are a pair: import_meta_graph + restore computes what the
    original computes, a fresh Saver() over the renamed variables finds its keys, and freeze reads it."""
    prefix = str(fixture_checkpoint("mlp_ref"))
    out, ckpt = tmp_path / "net.meta", tmp_path / "net.ckpt"
    report = rename(prefix + ".meta", out, add_prefix="net/", checkpoint_out=ckpt)
    assert report.checkpoint_files == [f"{ckpt}.index", f"{ckpt}.data-00000-of-00001"]
    from graphkit.io import open_checkpoint

    keys = sorted(t.name for t in open_checkpoint(ckpt).tensors())
    assert keys == sorted("net/" + t.name for t in open_checkpoint(prefix).tensors())
    v1 = tf.compat.v1
    xv = np.random.RandomState(4).randn(2, 8).astype(np.float32)
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.train.import_meta_graph(prefix + ".meta").restore(sess, prefix)
        want = sess.run("output:0", {"x:0": xv})
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.train.import_meta_graph(str(out)).restore(sess, str(ckpt))
        np.testing.assert_array_equal(sess.run("net/output:0", {"net/x:0": xv}), want)
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.train.import_meta_graph(str(out), clear_devices=True)
        v1.train.Saver(v1.global_variables()).restore(sess, str(ckpt))  # keys = the variables' new names
        np.testing.assert_array_equal(sess.run("net/output:0", {"net/x:0": xv}), want)
    frozen = freeze(out, tmp_path / "f.pb", checkpoint=ckpt, verify=True)
    assert frozen.verified[0].ok and "net/dense1/weights" in frozen.frozen


def test_checkpoint_out_needs_a_tf1_checkpoint_and_a_meta_output(tmp_path):
    prefix = str(fixture_checkpoint("mlp_ref"))
    with pytest.raises(GraphkitError, match="write the renamed graph as a .meta"):
        rename(prefix + ".meta", tmp_path / "g.pb", add_prefix="n/", checkpoint_out=tmp_path / "c")
    with pytest.raises(GraphkitError, match="needs a TF1 checkpoint and its .meta"):
        rename(FIXTURES / "tf2_module", tmp_path / "sm", add_prefix="n/", checkpoint_out=tmp_path / "c")
    with pytest.raises(GraphkitError, match="overwrite an input"):
        rename(prefix + ".meta", tmp_path / "g.meta", add_prefix="n/", checkpoint_out=prefix)
    assert not list(tmp_path.iterdir())
