"""freeze through control flow v2: TF1-style graphs built under TF 2.x defaults, where every tf.cond and
tf.while_loop is an If/While whose function bodies take the variables as resource arguments.

TensorFlow is the oracle: the original graph is imported from its .meta with the checkpoint restored, and
the frozen graph must import and give the same outputs. TF's own freezer runs beside it on the same graphs
(R1-R3 of the docs: where it breaks, graphkit must not)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import FIXTURES, MANIFEST, fixture_checkpoint

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.freeze import freeze
from graphkit.freeze.resources import freeze_resources_in_place
from graphkit.io import dtypes, load, validate
from graphkit.io.graph import GraphIndex
from graphkit.proto import graph_pb2

CFV2 = sorted(name for name, entry in MANIFEST.items() if entry.get("control_flow") == "v2")
RNG = np.random.RandomState(7)
FEEDS = {
    "cfv2_cond": [{"x:0": RNG.randn(3, 4).astype(np.float32), "flag:0": f} for f in (True, False)],
    "cfv2_while": [{"x:0": RNG.randn(2, 4).astype(np.float32)}],
    "cfv2_gather_in_cond": [{"ids:0": np.array([3, 0, 9, 3], np.int32), "flag:0": f} for f in (True, False)],
    "cfv2_var_in_cond": [{"x:0": RNG.randn(2, 3).astype(np.float32), "flag:0": f} for f in (True, False)],
    "cfv2_nested": [{"x:0": RNG.randn(5, 4).astype(np.float32)}],
    # inference first: in the session the training run updates the moving averages
    "cfv2_bn_adam": [{"x:0": RNG.randn(4, 6, 6, 2).astype(np.float32), "is_training:0": f} for f in (False, True)],
}
_STATEFUL_LEFT = {"VarHandleOp", "ReadVariableOp", "ResourceGather", "ResourceGatherNd", "VariableShape",
                  "AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp", "VariableV2"}


def _session(tf, name):
    """The original graph from its .meta, variables restored (the user's own session)."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        sess = v1.Session(graph=graph)
        prefix = str(fixture_checkpoint(name))
        v1.train.import_meta_graph(prefix + ".meta", clear_devices=True).restore(sess, prefix)
    return sess


def _outputs(name):
    return [o + ":0" for o in MANIFEST[name]["outputs"]]


def _run_graph_def(tf, gd, fetches, feeds):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return [sess.run(fetches, feed) for feed in feeds]


def _tf_graph_def(tf, path):
    return tf.compat.v1.GraphDef.FromString(path.read_bytes())


def test_every_case_has_feeds():
    assert set(CFV2) == set(FEEDS) and len(CFV2) == 6


@pytest.mark.parametrize("name", CFV2)
def test_frozen_control_flow_v2_equals_the_session(tf, tmp_path, name):
    out = tmp_path / "frozen.pb"
    report = freeze(fixture_checkpoint(name), out, outputs=MANIFEST[name]["outputs"])
    sess = _session(tf, name)
    with sess:
        expected = [sess.run(_outputs(name), feed) for feed in FEEDS[name]]
    got = _run_graph_def(tf, _tf_graph_def(tf, out), _outputs(name), FEEDS[name])
    for want_run, got_run in zip(expected, got, strict=True):
        for want, have in zip(want_run, got_run, strict=True):
            np.testing.assert_allclose(have, want, rtol=1e-6, atol=1e-7)
    frozen = load(out).graph.graph_def
    assert validate(frozen) == []
    assert report.specialized, "every case passes variables into a function"
    for fdef in frozen.library.function:
        assert validate(GraphIndex(fdef)) == []
        assert not {n.op for n in fdef.node_def} & _STATEFUL_LEFT, fdef.signature.name
        assert dtypes.DT_RESOURCE not in [a.type for a in fdef.signature.input_arg], fdef.signature.name
        assert fdef.signature.name.endswith("_frozen") or dtypes.DT_RESOURCE not in [
            a.type for a in fdef.signature.output_arg]
    assert not {n.op for n in frozen.node} & _STATEFUL_LEFT


def test_batch_norm_updates_under_cond_are_dropped_and_listed(tmp_path):
    report = freeze(fixture_checkpoint("cfv2_bn_adam"), tmp_path / "f.pb", outputs=["output"])
    assert sorted(u.rsplit("/", 1)[1] for u in report.dropped_updates) == ["AssignSubVariableOp",
                                                                          "AssignSubVariableOp_1"]
    assert all(u.startswith("bn1_cond_true_") for u in report.dropped_updates)
    frozen = load(tmp_path / "f.pb").graph.graph_def
    branch = next(f for f in frozen.library.function if f.signature.name.startswith("bn1_cond_true"))
    assert not [t for n in branch.node_def for t in n.input if "AssignSub" in t]  # control edges gone too
    assert not [v for v in branch.control_ret.values() if "AssignSub" in v]


def test_stale_output_shapes_from_the_meta_are_dropped(tmp_path):
    """R3: the .meta records _output_shapes on the While, including [] for its resource loop variables."""
    meta = load(fixture_checkpoint("cfv2_while").with_suffix(".ckpt.meta")).graph.graph_def
    assert "_output_shapes" in next(n for n in meta.node if n.op == "While").attr
    freeze(fixture_checkpoint("cfv2_while"), tmp_path / "f.pb", outputs=["output"])
    loop = next(n for n in load(tmp_path / "f.pb").graph.graph_def.node if n.op == "While")
    assert "_output_shapes" not in loop.attr
    assert list(loop.attr["T"].list.type)[-2:] == [dtypes.DT_FLOAT, dtypes.DT_FLOAT]
    assert [d.size for d in loop.attr["output_shapes"].list.shape[-2].dim] == [4, 4]


def _tf_freeze(tf, name):
    sess = _session(tf, name)
    with sess:
        return tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, sess.graph.as_graph_def(add_shapes=True), MANIFEST[name]["outputs"])


@pytest.mark.parametrize("name, broken", [
    ("cfv2_gather_in_cond", "expected type resource != float"),  # R1: ResourceGather in a branch is skipped
    ("cfv2_var_in_cond", "is not found"),  # R2: the branch's ret still names ReadVariableOp:value:0
    ("cfv2_while", "_output_shapes attribute inconsistent"),  # R3: stale shapes on the While
])
def test_where_tf_own_freezer_breaks_graphkit_does_not(tf, tmp_path, name, broken):
    theirs = _tf_freeze(tf, name)
    with pytest.raises(Exception, match=broken):
        _run_graph_def(tf, theirs, _outputs(name), FEEDS[name][:1])
    freeze(fixture_checkpoint(name), tmp_path / "f.pb", outputs=MANIFEST[name]["outputs"])
    got = _run_graph_def(tf, _tf_graph_def(tf, tmp_path / "f.pb"), _outputs(name), FEEDS[name][:1])
    assert all(np.all(np.isfinite(np.asarray(v, np.float64))) for v in got[0])


def test_where_tf_own_freezer_works_the_outputs_agree(tf, tmp_path):
    theirs = _tf_freeze(tf, "cfv2_cond")
    freeze(fixture_checkpoint("cfv2_cond"), tmp_path / "f.pb", outputs=["output"])
    ours = _tf_graph_def(tf, tmp_path / "f.pb")
    for a, b in zip(_run_graph_def(tf, theirs, ["output:0"], FEEDS["cfv2_cond"]),
                    _run_graph_def(tf, ours, ["output:0"], FEEDS["cfv2_cond"]), strict=True):
        np.testing.assert_array_equal(a[0], b[0])


def test_cli_verify_and_report(runner, tmp_path):
    result = runner.invoke(cli, ["freeze", str(fixture_checkpoint("cfv2_bn_adam")), str(tmp_path / "f.pb"),
                                 "--outputs", "output", "--verify", "--quiet"])
    assert result.exit_code == 0, result.output + str(result.stderr)
    assert "verified output: max abs 0" in result.output
    assert re.search(r"functions specialized: .*bn1_cond_true_\w+ -> bn1_cond_true_\w+_frozen", result.output)
    assert "AssignSubVariableOp" in result.output


# ---- graphs built here, for the refusals and the reader kinds --------------------------------------


def _save_graph(tf, tmp_path, build):
    """Build a TF1-style graph (control flow v2) with ``build()``, initialize, save; the checkpoint prefix."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        build()
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    return prefix


def test_readers_of_every_kind_inside_branches(tf, tmp_path):
    """ResourceGather with batch_dims=1 (TF refuses, R4), ResourceGatherNd, VariableShape and
    VarIsInitializedOp inside If branches; all become value ops."""
    v1 = tf.compat.v1
    raw = tf.raw_ops

    def build():
        ids = v1.placeholder(tf.int32, [2, 3], name="ids")
        flag = v1.placeholder_with_default(True, [], name="flag")
        table = v1.get_variable("table", [2, 5, 4], use_resource=True)
        nd = v1.get_variable("nd", [3, 3], use_resource=True)

        def yes():
            g = raw.ResourceGather(resource=table.handle, indices=ids, dtype=tf.float32, batch_dims=1)
            n = raw.ResourceGatherNd(resource=nd.handle, indices=[[0, 1], [2, 2]], dtype=tf.float32)
            s = tf.cast(raw.VariableShape(input=table.handle), tf.float32)
            ok = tf.cast(raw.VarIsInitializedOp(resource=nd.handle), tf.float32)
            return tf.reduce_sum(g, [2]) * ok + tf.reduce_sum(n) + tf.reduce_sum(s)

        tf.identity(tf.cond(flag, yes, lambda: tf.zeros([2, 3])), name="output")

    prefix = _save_graph(tf, tmp_path, build)
    feeds = [{"ids:0": np.array([[0, 4, 2], [1, 1, 3]], np.int32), "flag:0": f} for f in (True, False)]
    sess = tf.compat.v1.Session(graph=tf.Graph())
    with sess.graph.as_default(), sess:
        v1.train.import_meta_graph(prefix + ".meta").restore(sess, prefix)
        expected = [sess.run("output:0", f) for f in feeds]
    freeze(prefix, tmp_path / "f.pb", outputs=["output"])
    gd = _tf_graph_def(tf, tmp_path / "f.pb")
    got = _run_graph_def(tf, gd, "output:0", feeds)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    ops = {n.op for f in gd.library.function for n in f.node_def}
    assert {"GatherV2", "GatherNd", "Shape"} <= ops and not ops & _STATEFUL_LEFT


def test_a_write_then_a_read_of_the_same_variable_is_refused(tf, tmp_path):
    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [3], name="x")
        w = v1.get_variable("w", [3], use_resource=True)

        def bumped():
            with tf.control_dependencies([w.assign_add(x)]):
                return w.read_value() * 2.0

        tf.identity(tf.cond(tf.reduce_sum(x) > 0, bumped, lambda: w.read_value()), name="output")

    prefix = _save_graph(tf, tmp_path, build)
    with pytest.raises(GraphkitError, match=r"changes frozen variable .* before it is read"):
        freeze(prefix, tmp_path / "f.pb", outputs=["output"])
    assert not (tmp_path / "f.pb").exists()


def _handmade(consumer_op: str, extra: dict | None = None) -> graph_pb2.GraphDef:
    """v (a frozen VarHandleOp, now a Const) -> consumer."""
    gd = graph_pb2.GraphDef()
    v = gd.node.add(name="v", op="Const")
    v.attr["dtype"].type = dtypes.DT_FLOAT
    user = gd.node.add(name="user", op=consumer_op, input=["v"])
    for key, value in (extra or {}).items():
        user.attr[key].CopyFrom(value)
    return gd


def test_an_unknown_consumer_of_a_frozen_handle_is_refused_by_name():
    gd = _handmade("StatefulUniform")
    with pytest.raises(GraphkitError, match=r"node 'user' \(StatefulUniform\) takes frozen variable 'v'"):
        freeze_resources_in_place(gd, {"v": (dtypes.DT_FLOAT, (2,))}, {"v"})


def test_a_loop_that_replaces_a_handle_is_refused():
    """A While body that returns something else in place of its frozen loop variable."""
    from graphkit.proto import function_pb2

    gd = _handmade("While")
    loop = gd.node[1]
    loop.attr["T"].list.type.append(dtypes.DT_RESOURCE)
    loop.attr["cond"].func.name = "c"
    loop.attr["body"].func.name = "b"
    for name, ret in (("c", None), ("b", "other:resource:0")):
        fdef = gd.library.function.add()
        fdef.signature.name = name
        fdef.signature.input_arg.add(name="h", type=dtypes.DT_RESOURCE)
        out = fdef.signature.output_arg.add(name="out", type=dtypes.DT_RESOURCE if ret else dtypes.DT_BOOL)
        if ret:
            other = fdef.node_def.add(name="other", op="VarHandleOp")
            other.attr["dtype"].type = dtypes.DT_FLOAT
            fdef.ret[out.name] = ret
        else:
            t = fdef.node_def.add(name="t", op="Const")
            t.attr["dtype"].type = dtypes.DT_BOOL
            fdef.ret[out.name] = "t:output:0"
    assert isinstance(gd.library.function[0], function_pb2.FunctionDef)
    with pytest.raises(GraphkitError, match=r"loop 'user' changes the handle of frozen variable 'v'"):
        freeze_resources_in_place(gd, {"v": (dtypes.DT_FLOAT, (2,))}, {"v"})


def test_freeze_of_the_meta_fixture_is_listed_in_the_manifest():
    for name in CFV2:
        assert (FIXTURES / name / "model.ckpt.meta").is_file()


def test_gradient_intermediates_of_a_cond_are_pruned(tmp_path):
    """cond_v2 gives the If extra Optional-variant outputs for its gradient; nothing reads them in a frozen
    graph and ONNX cannot hold them, so they go, with the branch code only they needed."""
    meta = load(fixture_checkpoint("cfv2_bn_adam").with_suffix(".ckpt.meta")).graph.graph_def
    original = next(n for n in meta.node if n.name == "bn1/cond")
    assert dtypes.DT_VARIANT in original.attr["Tout"].list.type
    report = freeze(fixture_checkpoint("cfv2_bn_adam"), tmp_path / "f.pb", outputs=["output"])
    assert report.pruned_outputs == ["bn1/cond: 2 unused outputs"]
    frozen = load(tmp_path / "f.pb").graph.graph_def
    cond = next(n for n in frozen.node if n.name == "bn1/cond")
    assert list(cond.attr["Tout"].list.type) == [dtypes.DT_FLOAT, dtypes.DT_FLOAT]
    assert not {n.op for f in frozen.library.function for n in f.node_def} & {"OptionalFromValue", "OptionalNone"}
    assert all(f.signature.name.endswith("_pruned") for f in frozen.library.function)


def test_case_branches_and_a_direct_call_taking_a_handle(tf, tmp_path):
    """tf.switch_case (a Case with a list of branches) and a TF1 Defun called directly (the node's op is
    the function's name) with the variable handle as an argument: both specialized."""
    from tensorflow.python.framework import function

    v1 = tf.compat.v1

    def build():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        k = v1.placeholder_with_default(0, [], name="k")
        w = v1.get_variable("w", [3, 3], use_resource=True)
        s = v1.get_variable("s", [3], use_resource=True)
        y = tf.switch_case(k, [lambda: tf.matmul(x, w), lambda: x * 2.0, lambda: tf.matmul(x, w) + 1.0])

        @function.Defun(tf.resource, tf.float32)
        def scaled(h, a):
            return a * tf.raw_ops.ReadVariableOp(resource=h, dtype=tf.float32)

        tf.identity(scaled(s.handle, y), name="output")

    prefix = _save_graph(tf, tmp_path, build)
    feeds = [{"x:0": RNG.randn(2, 3).astype(np.float32), "k:0": k} for k in (0, 1, 2)]
    sess = tf.compat.v1.Session(graph=tf.Graph())
    with sess.graph.as_default(), sess:
        v1.train.import_meta_graph(prefix + ".meta").restore(sess, prefix)
        expected = [sess.run("output:0", f) for f in feeds]
    report = freeze(prefix, tmp_path / "f.pb", outputs=["output"])
    gd = _tf_graph_def(tf, tmp_path / "f.pb")
    for a, b in zip(_run_graph_def(tf, gd, "output:0", feeds), expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    originals = {s.split(" -> ")[0] for s in report.specialized}
    assert sum(n.startswith("switch_case_indexed_case_branch") for n in originals) == 3
    assert any(n.startswith("scaled_") for n in originals)
    direct = next(n for n in gd.node if n.op.startswith("scaled_"))
    assert direct.op.endswith("_frozen")


def test_read_variables_op_becomes_identity_n_and_needs_every_input_frozen():
    gd = _handmade("_ReadVariablesOp")
    w = gd.node.add(name="w", op="Const")
    w.attr["dtype"].type = dtypes.DT_INT64
    user = gd.node[1]
    user.input.append("w")
    user.attr["dtypes"].list.type.extend([dtypes.DT_FLOAT, dtypes.DT_INT64])
    user.attr["N"].i = 2
    freeze_resources_in_place(gd, {"v": (dtypes.DT_FLOAT, (2,)), "w": (dtypes.DT_INT64, ())}, {"v", "w"})
    assert user.op == "IdentityN" and list(user.attr["T"].list.type) == [dtypes.DT_FLOAT, dtypes.DT_INT64]
    assert "dtypes" not in user.attr and "N" not in user.attr
    half = _handmade("_ReadVariablesOp")
    half.node[1].input.append("other")
    half.node[1].attr["dtypes"].list.type.extend([dtypes.DT_FLOAT, dtypes.DT_FLOAT])
    with pytest.raises(GraphkitError, match="reads frozen and unfrozen variables together"):
        freeze_resources_in_place(half, {"v": (dtypes.DT_FLOAT, (2,))}, {"v"})
