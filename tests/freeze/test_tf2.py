"""freeze of TF2 object-graph SavedModels (tf.saved_model.save of a tf.Module, Keras 3 model.export), against
TensorFlow: the frozen graph must equal the loaded SavedModel's signature, with its ends named by key."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import FIXTURES, shared

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.freeze import freeze
from graphkit.io import load, validate
from graphkit.io.roles import graph_variables
from graphkit.io.savedmodel import object_graph_keys, restore_keys, signature_call

RNG = np.random.RandomState(3)
FEEDS = {
    "tf2_module": {"ids": np.array([1, 5, 11, 0, 7], np.int32), "x": RNG.randn(5, 4).astype(np.float32)},
    "keras_cnn": {"image": RNG.randn(3, 8, 8, 3).astype(np.float32)},
    "keras_lstm": {"tokens": RNG.randint(0, 20, (4, 7)).astype(np.int32)},
    "keras_gru": {"series": RNG.randn(2, 5, 4).astype(np.float32)},
    "tf2_module_readers": {"ids": np.array([[0, 5, 2], [1, 1, 4]], np.int32), "flag": np.array(True)},
    "tf2_module_state": {"x": RNG.randn(4, 3).astype(np.float32), "words": np.array([b"a", b"zz", b"c", b"b"])},
}
_LEFT = {"VarHandleOp", "ReadVariableOp", "ResourceGather", "StatefulPartitionedCall", "PartitionedCall"}


def _signature(tf, path, feeds, key="serving_default"):
    loaded = tf.saved_model.load(str(path))
    result = loaded.signatures[key](**{k: tf.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in result.items()}


def _run(tf, path, feeds, outputs, init=None):
    gd = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        if init:
            sess.run(init)
        values = sess.run([f"{o}:0" for o in outputs], {f"{k}:0": v for k, v in feeds.items()})
    return dict(zip(outputs, values, strict=True)), gd


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_frozen_signature_equals_the_saved_model(tf, tmp_path, name):
    out = tmp_path / "frozen.pb"
    report = freeze(FIXTURES / name, out)
    expected = _signature(tf, FIXTURES / name, FEEDS[name])
    got, gd = _run(tf, out, FEEDS[name], sorted(expected), report.init_op)
    for key, want in expected.items():
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got[key], want, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(got[key], want)
    assert report.signature == "serving_default"
    assert report.input_names == {k: k for k in FEEDS[name]}
    assert report.output_names == {k: k for k in expected} and sorted(report.outputs) == sorted(expected)
    assert not {n.op for n in gd.node} & _LEFT
    for fdef in gd.library.function:  # only the bodies of If/While remain, frozen
        assert not {n.op for n in fdef.node_def} & _LEFT, fdef.signature.name
    assert validate(load(out).graph.graph_def) == []


def test_tables_are_kept_with_their_initializer_and_updates_dropped(tf, tmp_path):
    """R5: TF's v2 freezer leaves the serving function's assign_add with a float input; graphkit drops it and
    keeps the StaticHashTable behind init_all_tables (the TF1 convention)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(str(FIXTURES / "tf2_module_state"))
    with pytest.raises(Exception, match="expected resource"):
        convert_variables_to_constants_v2(loaded.signatures["serving_default"])
    report = freeze(FIXTURES / "tf2_module_state", tmp_path / "f.pb")
    assert report.init_op == "init_all_tables"
    assert [d.rsplit("/", 1)[1] for d in report.dropped_updates] == ["AssignAddVariableOp"]
    assert [s.split(" -> ")[0].rsplit("_", 1)[0] for s in report.specialized].count("__inference_mm") == 1
    got, gd = _run(tf, tmp_path / "f.pb", FEEDS["tf2_module_state"], ["ids"], "init_all_tables")
    np.testing.assert_array_equal(got["ids"], [1, -1, 3, 2])
    assert "HashTableV2" in {n.op for n in gd.node}


def test_tf_own_v2_freezer_refuses_batch_dims_graphkit_does_not(tf, tmp_path):
    """R4: ResourceGather with batch_dims=1."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(str(FIXTURES / "tf2_module_readers"))
    with pytest.raises(ValueError, match="batch_dims must be 0"):
        convert_variables_to_constants_v2(loaded.signatures["serving_default"])
    report = freeze(FIXTURES / "tf2_module_readers", tmp_path / "f.pb")
    got, gd = _run(tf, tmp_path / "f.pb", FEEDS["tf2_module_readers"], ["shape"])
    np.testing.assert_array_equal(got["shape"], [4, 3])  # u has no static shape: the checkpoint's
    assert report.frozen and {"GatherV2", "GatherNd", "Shape"} <= {n.op for n in gd.node}


def test_keras_export_takes_the_copies_the_signature_reads(tmp_path):
    """Keras 3 writes each weight twice; the restore function says which key feeds the signature's handles,
    and the object graph's other key must hold the same value."""
    model = load(FIXTURES / "keras_cnn")
    keys = restore_keys(model.graph.graph_def, model.meta_graph)
    call = signature_call(model.graph.graph_def, model.meta_graph, "serving_default")
    graph_keys = object_graph_keys(model.meta_graph, model.checkpoint.object_graph())
    assert all(keys[h].startswith("_all_variables/") for h in call.captured)
    assert all(graph_keys[i].startswith("variables/") for i in call.captured.values())
    assert all(model.checkpoint.same_value(keys[h], graph_keys[i]) for h, i in call.captured.items())
    labels = {v.key: v.label for v in graph_variables(model.graph.graph_def, model.meta_graph)}
    assert labels["_all_variables/0/.ATTRIBUTES/VARIABLE_VALUE"] == "sequential/conv2d/kernel"


def test_tf_module_variables_all_named_variable_are_keyed_by_the_restore_function():
    model = load(FIXTURES / "tf2_module")
    assert {n.variable.name for n in model.meta_graph.object_graph_def.nodes if n.WhichOneof("kind") == "variable"} \
        == {"Variable"}
    by_key = {v.key: (v.nodes, v.label) for v in graph_variables(model.graph.graph_def, model.meta_graph)}
    call = signature_call(model.graph.graph_def, model.meta_graph, "serving_default")
    graph_keys = object_graph_keys(model.meta_graph, model.checkpoint.object_graph())
    for handle, obj in call.captured.items():  # two independent answers agree
        assert by_key[graph_keys[obj]][0] == [handle]
    assert sorted(label for _, label in by_key.values()) == ["b", "emb", "steps", "w"]


def test_a_key_whose_two_copies_differ_is_refused_before_writing(tf, tmp_path):
    src = tmp_path / "export"
    shutil.copytree(FIXTURES / "keras_cnn", src)
    prefix = str(src / "variables" / "variables")
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    values = [reader.get_tensor(n) for n in names]
    values[names.index("variables/0/.ATTRIBUTES/VARIABLE_VALUE")] += 1.0
    for f in (src / "variables").iterdir():
        f.unlink()
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])
    out = tmp_path / "f.pb"
    with pytest.raises(GraphkitError, match=r"restored from '_all_variables/0/.*'variables/0/.* values differ"):
        freeze(src, out)
    assert not out.exists()


def test_no_inline_keeps_the_calls_and_still_runs(tf, tmp_path):
    out = tmp_path / "f.pb"
    report = freeze(FIXTURES / "tf2_module", out, inline=False, outputs=["y"])
    assert report.inlined == [] and report.output_names == {"y": "y"}
    expected = _signature(tf, FIXTURES / "tf2_module", FEEDS["tf2_module"])
    got, gd = _run(tf, out, FEEDS["tf2_module"], ["y"])
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-6)
    assert "StatefulPartitionedCall" in {n.op for n in gd.node}
    assert not {n.op for n in gd.node} & {"VarHandleOp", "ReadVariableOp"}


def test_unknown_output_key_names_the_keys(tmp_path):
    with pytest.raises(GraphkitError, match=r"no output z \(it has: e, y\)"):
        freeze(FIXTURES / "tf2_module", tmp_path / "f.pb", outputs=["z"])


@pytest.mark.parametrize("name", ["keras_cnn", "keras_lstm", "keras_gru", "tf2_module"])
def test_tf_own_v2_freezer_agrees(tf, tmp_path, name):
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(str(FIXTURES / name))
    theirs = convert_variables_to_constants_v2(loaded.signatures["serving_default"])
    want = theirs(**{k: tf.constant(v) for k, v in FEEDS[name].items()})
    keys = sorted(loaded.signatures["serving_default"].structured_outputs)
    freeze(FIXTURES / name, tmp_path / "f.pb")
    got, _ = _run(tf, tmp_path / "f.pb", FEEDS[name], keys)
    values = [want[k] for k in keys] if isinstance(want, dict) else list(want)  # a list, ordered by key
    for key, value in zip(keys, values, strict=True):
        np.testing.assert_array_equal(got[key], value.numpy())


def test_shared_half_plus_two_tf2(tf, tmp_path):
    src = shared("tfserving/saved_model_half_plus_two_tf2_cpu/00000123")
    report = freeze(src, tmp_path / "f.pb", verify=True)
    assert report.output_names == {"y": "y"} and report.verified[0].ok
    got, _ = _run(tf, tmp_path / "f.pb", {"x": np.array([3.0], np.float32)}, ["y"])
    np.testing.assert_array_equal(got["y"], [3.5])  # y = 0.5 x + 2
    other = freeze(src, tmp_path / "g.pb", signature="regress_x2_to_y3", verify=True)
    assert other.output_names == {"outputs": "outputs"} and other.input_names == {"inputs": "inputs"}


def test_cli_json_reports_the_key_mapping(runner, tmp_path):
    import json

    result = runner.invoke(cli, ["freeze", str(FIXTURES / "tf2_module"), str(tmp_path / "f.pb"), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["input_names"] == {"ids": "ids", "x": "x"} and data["output_names"] == {"e": "e", "y": "y"}
    assert len(data["inlined"]) == 3  # the signature wrapper, __call__, and layer inside the while body
    assert any(i.startswith("while_body_") and "__inference_layer_" in i for i in data["inlined"])


def test_implements_calls_stay_calls_but_are_frozen(tf, tmp_path):
    """A tf.function with experimental_implements (what TFLite keys composite-op fusion on) stays a call,
    its caller around it inlined and frozen (such functions take values, never captured variables)."""

    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.constant([[1.0, 2.0], [3.0, 4.0]]))

        @tf.function(experimental_implements="graphkit.test.project")
        def project(self, x, w):
            return tf.matmul(x, w)

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": self.project(x, self.w.read_value()) + 1.0}

    net = Net()
    tf.saved_model.save(net, str(tmp_path / "sm"), signatures={"serving_default": net.__call__})
    report = freeze(tmp_path / "sm", tmp_path / "f.pb")
    assert len(report.kept_calls) == 1 and "_implements 'graphkit.test.project'" in report.kept_calls[0]
    x = np.array([[1.0, 0.0], [0.5, 2.0]], np.float32)
    got, gd = _run(tf, tmp_path / "f.pb", {"x": x}, ["y"])
    np.testing.assert_array_equal(got["y"], x @ [[1.0, 2.0], [3.0, 4.0]] + 1.0)
    calls = [n for n in gd.node if n.op in ("StatefulPartitionedCall", "PartitionedCall")]
    assert len(calls) == 1 and "_implements" in {f.signature.name: f for f in gd.library.function}[
        calls[0].attr["f"].func.name].attr
    assert not {n.op for n in gd.node} & {"VarHandleOp", "ReadVariableOp"}


@pytest.mark.parametrize("src, outputs", [("tf2_module", []), ("cfv2_bn_adam", ["--outputs", "output"])])
def test_the_same_input_gives_the_same_bytes(tmp_path, src, outputs):
    """Issue 13.14: output bytes do not depend on the process (hash seeds reorder protobuf maps)."""
    import subprocess
    import sys

    from conftest import MANIFEST, fixture_checkpoint

    path = fixture_checkpoint(src) if "checkpoint" in MANIFEST[src] else FIXTURES / src
    import os

    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-m", "graphkit", "freeze", str(path), str(tmp_path / f"{seed}.pb"), *outputs,
                        "-q"], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
    assert (tmp_path / "1.pb").read_bytes() == (tmp_path / "2.pb").read_bytes()
