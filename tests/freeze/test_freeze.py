"""freeze against TensorFlow: same outputs as the restored session, same node set as TF's own freeze."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES, MANIFEST, fixture_checkpoint, shared

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.freeze import freeze
from graphkit.io import load, validate
from graphkit.runtime.difference import Check

FEEDS = {
    "mlp_ref": {"x:0": np.random.RandomState(1).randn(3, 8).astype(np.float32)},
    "resource_sharded": {"ids:0": np.array([1, 9, 4], np.int32)},
    "control_flow": {"x:0": np.random.RandomState(2).randn(2, 4).astype(np.float32)},
    "saved_model_tf1": {"x:0": np.random.RandomState(3).randn(4, 3).astype(np.float32)},
}


def _session_reference(tf, name, outputs):
    """Run the original graph with its variables restored, and TF's own freeze of it."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        if name == "saved_model_tf1":
            v1.saved_model.loader.load(sess, ["serve"], str(FIXTURES / name))
        else:
            prefix = str(fixture_checkpoint(name))
            saver = v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            saver.restore(sess, prefix)
        values = sess.run([o + ":0" for o in outputs], FEEDS[name])
        theirs = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), outputs)
    return values, theirs


def _run_frozen(tf, path, outputs, feed):
    gd = tf.compat.v1.GraphDef()
    if str(path).endswith(".pbtxt"):
        from google.protobuf import text_format

        text_format.Parse(path.read_text(), gd)
    else:
        gd.ParseFromString(path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run([o + ":0" for o in outputs], feed), gd


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_frozen_matches_session_and_tf_freeze(tf, tmp_path, name):
    outputs = ["y"] if name == "saved_model_tf1" else MANIFEST[name]["outputs"]
    src = FIXTURES / name if name == "saved_model_tf1" else fixture_checkpoint(name)
    out = tmp_path / "frozen.pb"
    report = freeze(src, out, outputs=outputs)
    expected, theirs = _session_reference(tf, name, outputs)
    got, ours = _run_frozen(tf, out, outputs, FEEDS[name])
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert {(n.name, n.op) for n in ours.node} == {(n.name, n.op) for n in theirs.node}
    assert not any(n.op in ("VariableV2", "VarHandleOp", "ReadVariableOp") for n in ours.node)
    assert validate(load(out).graph.graph_def) == []
    assert report.nodes_after == len(ours.node) and report.frozen


def test_partitioned_embedding_is_frozen_per_part(tmp_path):
    report = freeze(fixture_checkpoint("resource_sharded"), tmp_path / "f.pb", outputs=["output"])
    assert set(report.frozen) == {"emb/table", "proj/w", "proj/b"}  # Adam slots are not on the path
    parts = {n.name: n for n in load(tmp_path / "f.pb").graph.graph_def.node if n.name.startswith("emb/table/part_")}
    assert [tuple(d.size for d in parts[f"emb/table/part_{i}"].attr["value"].tensor.tensor_shape.dim)
            for i in range(3)] == [(4, 3), (3, 3), (3, 3)]


def test_text_output_and_graph_plus_checkpoint(tf, tmp_path):
    out = tmp_path / "frozen.pbtxt"
    freeze(None, out, graph=FIXTURES / "mlp_ref" / "graph.pbtxt", checkpoint=fixture_checkpoint("mlp_ref"),
           outputs=["output"])
    assert out.read_text().startswith("node {")
    got, _ = _run_frozen(tf, out, ["output"], FEEDS["mlp_ref"])
    expected, _ = _session_reference(tf, "mlp_ref", ["output"])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)


def test_keep_and_skip_variables(tmp_path):
    report = freeze(fixture_checkpoint("mlp_ref"), tmp_path / "a.pb", outputs=["output"],
                    skip_variables=["dense2/*"])
    assert sorted(report.frozen) == ["dense1/bias", "dense1/weights"]
    assert sorted(report.kept_variables) == ["dense2/bias", "dense2/weights"]
    ops = {n.name: n.op for n in load(tmp_path / "a.pb").graph.graph_def.node}
    assert ops["dense2/weights"] == "VariableV2" and ops["dense1/weights"] == "Const"
    only = freeze(fixture_checkpoint("mlp_ref"), tmp_path / "b.pb", outputs=["output"],
                  keep_variables=["dense1/weights"])
    assert only.frozen == ["dense1/weights"]


def test_mismatches_listed_before_anything_is_written(tmp_path):
    src = fixture_checkpoint("control_flow")
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(fixture_checkpoint("mlp_ref").with_suffix(".ckpt-3.meta"), tmp_path / "model.ckpt.meta")
    out = tmp_path / "frozen.pb"
    with pytest.raises(GraphkitError) as err:
        freeze(tmp_path / "model.ckpt", out, outputs=["output"])
    message = str(err.value)
    for key in ("dense1/weights", "dense1/bias", "dense2/weights", "dense2/bias"):
        assert f"variable '{key}' is not in the checkpoint" in message
    assert not out.exists() and not list(tmp_path.glob(".frozen*"))


def test_shape_mismatch_names_both_shapes(tmp_path):
    from graphkit.freeze.freezer import _check_variable
    from graphkit.io.checkpoint import open_checkpoint

    model = load(fixture_checkpoint("mlp_ref"))
    node = next(n for n in model.graph.graph_def.node if n.name == "dense1/weights")
    node.attr["shape"].shape.dim[0].size = 9
    problem = _check_variable(node, "dense1/weights", "", open_checkpoint(fixture_checkpoint("mlp_ref")))
    assert problem == "variable 'dense1/weights' has shape [9, 16] in the graph but [8, 16] in the checkpoint"


def test_missing_shard_is_reported(tmp_path):
    src = fixture_checkpoint("resource_sharded")
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    next(tmp_path.glob("*.data-00001-of-00002")).unlink()
    with pytest.raises(GraphkitError, match="data-00001-of-00002 is missing"):
        freeze(tmp_path / "model.ckpt", tmp_path / "f.pb", outputs=["output"])


def test_a_train_op_as_output_is_an_error(tmp_path):
    with pytest.raises(GraphkitError, match="'train' .* is a training op"):
        freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb", outputs=["train"])
    assert not (tmp_path / "f.pb").exists()


def _bn_session(tf, feed, training):
    v1 = tf.compat.v1
    graph = tf.Graph()
    prefix = str(fixture_checkpoint("batch_norm"))
    with graph.as_default(), v1.Session(graph=graph) as sess:
        v1.train.import_meta_graph(prefix + ".meta", clear_devices=True).restore(sess, prefix)
        value = sess.run("output:0", {**feed, "is_training:0": training})
        theirs = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["output"])
    return value, theirs


def test_batch_norm_moving_averages(tf, tmp_path):
    """Forced moving-average updates (AssignSub through RefSwitch in a tf.cond) are dropped, ref reads become
    value reads: the frozen graph equals the session in inference *and* training mode, where TF's own freeze
    keeps the update ops and writes a graph that fails to import (tensorflow#3628)."""
    out = tmp_path / "bn.pb"
    report = freeze(fixture_checkpoint("batch_norm"), out, outputs=["output"])
    assert sorted(report.dropped_updates) == ["bn1/moments_cond/AssignMovingAvg", "bn1/moments_cond/AssignMovingAvg_1"]
    assert "bn1/moving_mean" in report.frozen and not any("Momentum" in k for k in report.frozen)
    feed = {"x:0": np.random.RandomState(4).randn(5, 6).astype(np.float32)}
    for training in (False, True):
        expected, theirs = _bn_session(tf, feed, training)
        got, ours = _run_frozen(tf, out, ["output"], {**feed, "is_training:0": training})
        np.testing.assert_allclose(got[0], expected, rtol=1e-6, atol=1e-7)
    ops = {n.op for n in ours.node}
    assert not ops & {"RefSwitch", "AssignSub", "VariableV2"}
    # TF's node set = ours + the update subgraph it could not drop
    extra = {n.name for n in theirs.node} - {n.name for n in ours.node}
    assert {n.name for n in ours.node} <= {n.name for n in theirs.node}
    assert set(report.dropped_updates) <= extra
    assert all(name.startswith("bn1/") for name in extra)
    with pytest.raises(Exception, match="float_ref"), tf.Graph().as_default():
        tf.compat.v1.import_graph_def(theirs, name="")


def test_assign_whose_value_is_used_becomes_arithmetic(tf, tmp_path):
    """y = assign_add(v, x) * 2: the frozen graph computes one session run's value."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    prefix = str(tmp_path / "m.ckpt")
    with graph.as_default(), v1.Session(graph=graph) as sess:
        x = v1.placeholder(tf.float32, [3], name="x")
        v = v1.get_variable("v", initializer=np.arange(3, dtype=np.float32), use_resource=False)
        tf.multiply(v1.assign_add(v, x), 2.0, name="y")
        sess.run(v1.global_variables_initializer())
        v1.train.Saver().save(sess, prefix)
        expected = sess.run("y:0", {"x:0": [1, 2, 3]})
    freeze(prefix, tmp_path / "f.pb", outputs=["y"])
    got, ours = _run_frozen(tf, tmp_path / "f.pb", ["y"], {"x:0": [1, 2, 3]})
    np.testing.assert_array_equal(got[0], expected)
    assert {n.op for n in ours.node} >= {"Add", "Const"} and "AssignAdd" not in {n.op for n in ours.node}


def test_outputs_default_to_the_clear_candidate_or_list_them(tmp_path):
    report = freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb")
    assert report.outputs == ["output"]
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
    for name in ("relu_a", "relu_b"):  # two heads: both are outputs of the model
        gd.node.add(name=name, op="Relu", input=["x"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "two.pb")
    assert freeze(tmp_path / "two.pb", tmp_path / "g.pb").outputs == ["relu_a", "relu_b"]
    unclear = graph_pb2.GraphDef()
    unclear.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
    unclear.node.add(name="c", op="Const").attr["dtype"].type = 1
    for name in ("relu_a", "relu_b"):  # neither reads an input: nothing is clear
        unclear.node.add(name=name, op="Relu", input=["c"]).attr["T"].type = 1
    save_graph(Graph(unclear), tmp_path / "unclear.pb")
    with pytest.raises(GraphkitError, match=r"name them with --outputs \(candidates: relu_a \(Relu\), relu_b"):
        freeze(tmp_path / "unclear.pb", tmp_path / "h.pb")
    sm = freeze(FIXTURES / "saved_model_tf1", tmp_path / "s.pb")
    assert sm.outputs == ["y"]


def test_two_gb_guard(tmp_path, monkeypatch):
    import graphkit.freeze.freezer as fz

    monkeypatch.setattr(fz, "PROTOBUF_LIMIT", 1000)
    with pytest.raises(GraphkitError, match="cannot load a GraphDef over 2 GiB"):
        freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb", outputs=["output"])
    assert not (tmp_path / "f.pb").exists()


def test_weights_stream_from_the_checkpoint(tmp_path, monkeypatch):
    """Const bytes are copied file-to-file from the data shard, never held (peak memory does not grow)."""
    import graphkit.freeze.freezer as fz

    seen = {}
    real = fz.save_graph

    def spy(graph, *a, **k):
        seen.update(graph.external)
        return real(graph, *a, **k)

    monkeypatch.setattr(fz, "save_graph", spy)
    freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb", outputs=["output"])
    assert set(seen) == {"dense1/weights", "dense1/bias", "dense2/weights", "dense2/bias"}
    from graphkit.io.graph import FileSlice

    assert all(isinstance(v, FileSlice) and v.path.endswith(".data-00000-of-00001") for v in seen.values())


def test_shared_regression_checkpoint(tf, tmp_path):
    out = tmp_path / "f.pb"
    freeze(shared("tf2onnx_models/regression/checkpoint"), out, outputs=["pred"])
    x = np.array([0.0, 1.0, -2.5], np.float32)
    got, _ = _run_frozen(tf, out, ["pred"], {"X:0": x})
    np.testing.assert_allclose(got[0], 0.21396178 * x + 1.0495254, rtol=1e-6)


def test_shared_half_plus_two(tf, tmp_path):
    out = tmp_path / "f.pb"
    freeze(shared("tfserving/half_plus_two_tf1_checkpoint/00000123") / "export", out, outputs=["Add"])
    got, _ = _run_frozen(tf, out, ["Add"], {"Placeholder:0": np.array([1.0, 3.0], np.float32)})
    np.testing.assert_allclose(got[0], [2.5, 3.5])


def test_cli(runner, tmp_path):
    out = tmp_path / "f.pb"
    result = runner.invoke(cli, ["freeze", str(fixture_checkpoint("mlp_ref")), str(out), "--outputs", "output",
                                 "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["nodes_before"] == 191 and report["nodes_after"] == 15 and len(report["frozen"]) == 4
    again = runner.invoke(cli, ["freeze", str(out), str(out), "--outputs", "output"])
    assert again.exit_code == 1 and "overwrite an input" in again.stderr
    assert "Examples:" in runner.invoke(cli, ["freeze", "--help"]).stdout


@pytest.mark.parametrize("name", ["mlp_ref", "control_flow", "batch_norm", "saved_model_tf1"])
def test_verify_passes(tf, tmp_path, name):
    src = FIXTURES / name if name == "saved_model_tf1" else fixture_checkpoint(name)
    report = freeze(src, tmp_path / "f.pb", verify=Check(batch=5),
                    outputs=None if name == "saved_model_tf1" else ["output"])
    assert report.verified and all(d.ok and d.max_abs <= 1e-6 for d in report.verified)


def test_verify_fails_over_tolerance(tf, tmp_path, monkeypatch, runner):
    import graphkit.runtime as rt

    real = rt.run_graph_def
    monkeypatch.setattr(rt, "run_graph_def", lambda *a, **k: [x + 1e-3 for x in real(*a, **k)])
    with pytest.raises(GraphkitError, match=r"--verify: .* output: max abs 0\.001.*nothing was written"):
        freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb", outputs=["output"], verify=True)
    assert not (tmp_path / "f.pb").exists() and not list(tmp_path.iterdir())  # issue 12.4: nothing left behind
    result = runner.invoke(cli, ["freeze", str(fixture_checkpoint("mlp_ref")), str(tmp_path / "g.pb"),
                                 "--outputs", "output", "--verify"])
    assert result.exit_code == 1 and "--verify" in result.stderr


def test_verify_with_given_input(tf, tmp_path, runner):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((2, 8), np.float32))
    result = runner.invoke(cli, ["freeze", str(fixture_checkpoint("mlp_ref")), str(tmp_path / "f.pb"), "--outputs",
                                 "output", "--verify", "--input", f"x={x}", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["verified"][0]["ok"]


def test_freeze_without_verify_never_imports_tensorflow(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom graphkit.freeze import freeze\n"
            "freeze(sys.argv[1], sys.argv[2], outputs=['output'])\n"
            "assert 'tensorflow' not in sys.modules\nprint('TF-FREE')\n")
    result = subprocess.run([sys.executable, "-c", code, str(fixture_checkpoint("mlp_ref")), str(tmp_path / "f.pb")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "TF-FREE" in result.stdout, result.stderr


def test_shared_regression_saved_model(tf, tmp_path):
    src = shared("tf2onnx_models/regression/saved_model")
    report = freeze(src, tmp_path / "f.pb")  # outputs from the serving_default signature
    x = np.array([2.0, -1.0], np.float32)
    got, _ = _run_frozen(tf, tmp_path / "f.pb", report.outputs, {"X:0": x})
    np.testing.assert_allclose(got[0], 0.21396178 * x + 1.0495254, rtol=1e-6)
    with pytest.raises(GraphkitError, match="unknown rank; give it with --input"):
        freeze(src, tmp_path / "g.pb", verify=True)
    verified = freeze(src, tmp_path / "h.pb", verify=Check({"X": x}))
    assert verified.verified[0].ok


def test_graph_and_checkpoint_take_out_as_the_one_positional(runner, tmp_path):
    """The README's form: with --graph, the only positional argument is OUT (issue 12.7)."""
    out = tmp_path / "frozen.pbtxt"
    result = runner.invoke(cli, ["freeze", "--graph", str(FIXTURES / "mlp_ref" / "graph.pbtxt"), "--checkpoint",
                                 str(fixture_checkpoint("mlp_ref")), str(out), "--outputs", "output", "--quiet"])
    assert result.exit_code == 0, result.output + str(result.stderr)
    assert out.read_text().startswith("node {")
    missing = runner.invoke(cli, ["freeze", str(fixture_checkpoint("mlp_ref"))])
    assert missing.exit_code == 2 and "Missing argument 'OUT'" in missing.stderr


def test_the_loss_is_not_an_inference_output(tf, tmp_path):
    """Issue 12.3: the shared regression checkpoint's sink is the cost (it needs the label Y); the inference
    output is pred, which only the loss reads."""
    src = shared("tf2onnx_models/regression/checkpoint")
    report = freeze(src, tmp_path / "f.pb")
    assert report.outputs == ["pred"]
    gd = load(tmp_path / "f.pb").graph.graph_def
    assert "Y" not in {n.name for n in gd.node}
    got, _ = _run_frozen(tf, tmp_path / "f.pb", ["pred"], {"X:0": np.array([1.0, 2.0], np.float32)})
    assert got[0].shape == (2,)


def test_a_graph_tf_would_refuse_is_not_frozen(tmp_path):
    """Issue 13.12: freeze carried a cycle and an unknown DataType enum through to a graph TF cannot
    import; it now refuses, naming the input, and writes nothing."""
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    for case, says in (("cycle", "cycle that is not a TF1 while loop runs through z, w"),
                       ("dtype", "node 'z' has attr 'T' = 999, which is no DataType")):
        gd = graph_pb2.GraphDef()
        gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
        gd.node.add(name="z", op="AddV2", input=["x", "w" if case == "cycle" else "x"]).attr["T"].type = (
            1 if case == "cycle" else 999)
        gd.node.add(name="w", op="Identity", input=["z"]).attr["T"].type = 1
        src = tmp_path / f"{case}.pb"
        save_graph(Graph(gd), src)
        with pytest.raises(GraphkitError, match=f"{case}.pb: the frozen graph would not import.*{says}"):
            freeze(src, tmp_path / "out.pb", outputs=["w"])
        assert not (tmp_path / "out.pb").exists()


def test_verify_of_a_non_float_output_reports_it(tf, tmp_path, runner):
    """Issue 14.1: freeze --verify of an int64 output wrote the file, then failed with "internal error:
    KeyError: 'max_rel'" (the difference of integer outputs had no such key). Differences are now one
    dataclass with every field; the report line describes what applies."""
    src = fixture_checkpoint("mlp_ref")
    result = runner.invoke(cli, ["freeze", str(src), str(tmp_path / "v.pb"), "--outputs", "vocab/read", "--verify"])
    assert result.exit_code == 0, result.stderr
    assert "verified vocab/read: equal" in result.output
    result = runner.invoke(cli, ["freeze", str(src), str(tmp_path / "c.pb"), "--outputs", "counts/read", "--verify",
                                 "--json"])
    assert result.exit_code == 0, result.stderr
    verified, = json.loads(result.stdout)["verified"]
    assert verified["ok"] and verified["max_abs"] == 0.0 and set(verified) >= {"problem", "max_rel", "worst_index"}


def test_a_read_without_its_dtype_attr_is_frozen_not_a_crash(tf, tmp_path):
    """The corpus (seed 19): a damaged graph whose ReadVariableOp lacked its dtype attr crashed freeze
    with a KeyError; the frozen Identity takes its type from the frozen value."""
    import shutil

    from graphkit.proto import meta_graph_pb2

    src = fixture_checkpoint("cfv2_bn_adam")
    for part in src.parent.iterdir():
        shutil.copy(part, tmp_path / part.name)
    meta_path = tmp_path / f"{src.name}.meta"
    meta = meta_graph_pb2.MetaGraphDef.FromString(meta_path.read_bytes())
    for body in meta.graph_def.library.function:  # the reads inside the tf.cond branches
        for read in body.node_def:
            if read.op == "ReadVariableOp":
                del read.attr["dtype"]
    meta_path.write_bytes(meta.SerializeToString())
    report = freeze(tmp_path / src.name, tmp_path / "f.pb", outputs=["output"])
    assert report.frozen and (tmp_path / "f.pb").exists()
    gd = tf.compat.v1.GraphDef.FromString((tmp_path / "f.pb").read_bytes())
    with tf.Graph().as_default():
        tf.compat.v1.import_graph_def(gd, name="")
