"""graphkit run and compare: every model kind, the unsafe-op refusal, compare's exit status."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, shared

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.freeze import freeze
from graphkit.runtime.difference import Check
from graphkit.runtime.runner import compare, make_feeds, open_runnable, run

X = np.array([[1.0], [2.0], [3.0]], np.float32)


@pytest.mark.parametrize("folder,offset", [("saved_model_half_plus_two_cpu", 2.0), ("saved_model_half_plus_three", 3.0),
                                           ("saved_model_half_plus_two_tf2_cpu", 2.0)])
def test_run_tfserving_saved_models(tf, folder, offset):
    path = shared(f"tfserving/{folder}/00000123")
    runnable = open_runnable(path)
    x = X if runnable.kind == "savedmodel" else X.reshape(-1)
    values = run(runnable, {runnable.inputs[0].name: x})
    (name, y), = values.items()
    np.testing.assert_allclose(y.reshape(-1), 0.5 * X.reshape(-1) + offset)


def test_run_frozen_and_checkpoint_agree_and_save(tf, runner, tmp_path):
    frozen = tmp_path / "f.pb"
    freeze(fixture_checkpoint("mlp_ref"), frozen, outputs=["output"])
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))
    out = tmp_path / "o.npz"
    result = runner.invoke(cli, ["run", str(fixture_checkpoint("mlp_ref")), "--output", "output", "--input",
                                 f"x={tmp_path / 'x.npy'}", "--save", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["outputs"][0]["shape"] == [4, 4]
    with np.load(out) as saved:
        assert set(saved.files) == {"output", "input:x"}
        ckpt_value = saved["output"]
    frozen_value = run(open_runnable(frozen, outputs=["output"]), {"x": np.load(tmp_path / "x.npy")})["output"]
    np.testing.assert_allclose(frozen_value, ckpt_value, rtol=1e-6)


def _reads_a_file(tf, tmp_path):
    g = tf.Graph()
    with g.as_default():
        name = tf.compat.v1.placeholder(tf.string, [], name="path")
        tf.strings.length(tf.io.read_file(name), name="size")
    path = tmp_path / "reader.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path


def test_unsafe_ops_are_refused_unless_allowed(tf, runner, tmp_path):
    path = _reads_a_file(tf, tmp_path)
    with pytest.raises(GraphkitError, match=r"ReadFile \(ReadFile\).*--allow-unsafe-ops"):
        open_runnable(path, outputs=["size"])
    (tmp_path / "data.bin").write_bytes(b"12345")
    runnable = open_runnable(path, outputs=["size"], allow_unsafe_ops=True)
    assert run(runnable, {"path": np.array(str(tmp_path / "data.bin").encode())})["size"] == 5
    result = runner.invoke(cli, ["run", str(path), "--output", "size"])
    assert result.exit_code == 1 and "ReadFile" in result.stderr


def test_print_to_a_file_is_unsafe_but_to_stderr_is_not(tf, tmp_path):
    v1 = tf.compat.v1
    import sys

    for stream, refused in ((f"file://{tmp_path / 'log.txt'}", True), (sys.stderr, False)):
        g = tf.Graph()
        with g.as_default():
            x = v1.placeholder(tf.float32, [2], name="x")
            with tf.control_dependencies([tf.print(x, output_stream=stream, name="log")]):
                tf.identity(x, name="y")
        path = tmp_path / "p.pb"
        path.write_bytes(g.as_graph_def().SerializeToString())
        if refused:
            with pytest.raises(GraphkitError, match=r"log \(PrintV2\)"):
                open_runnable(path, outputs=["y"])
        else:
            assert open_runnable(path, outputs=["y"]).outputs == ["y"]


def test_compare_passes_for_a_freeze_and_fails_for_an_altered_graph(tf, runner, tmp_path):
    frozen = tmp_path / "f.pb"
    freeze(fixture_checkpoint("mlp_ref"), frozen, outputs=["output"])
    same = compare(fixture_checkpoint("mlp_ref"), frozen, pairs={"output": "output"}, batch=3, rtol=1e-6)
    assert same.ok and same.results[0].max_abs <= 1e-6
    gd = tf.compat.v1.GraphDef.FromString(frozen.read_bytes())
    const = next(n for n in gd.node if n.op == "Const" and n.attr["value"].tensor.tensor_content)
    values = np.frombuffer(const.attr["value"].tensor.tensor_content, np.float32).copy()
    values[0] += 1.0
    const.attr["value"].tensor.tensor_content = values.tobytes()
    altered = tmp_path / "altered.pb"
    altered.write_bytes(gd.SerializeToString())
    result = runner.invoke(cli, ["compare", str(frozen), str(altered), "--batch", "3"])
    assert result.exit_code == 1 and "DIFFERENT" in result.output and "outputs differ" in result.stderr
    result = runner.invoke(cli, ["compare", str(frozen), str(altered), "--batch", "3", "--json"])
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["results"][0]["worst_index"]


def test_random_inputs_follow_dtype_shape_batch_and_seed():
    runnable = open_runnable(FIXTURES / "frozen" / "sigmoid.pb")
    a = make_feeds(runnable, batch=5, seed=1)
    b = make_feeds(runnable, batch=5, seed=1)
    assert a["x"].shape == (5, 3) and a["x"].dtype == np.float32 and np.array_equal(a["x"], b["x"])
    with pytest.raises(GraphkitError, match="--input names nope"):
        make_feeds(runnable, {"nope": np.zeros(1)})


def test_a_saved_model_tf2_cannot_revive_runs_through_the_tf1_loader(tf, runner, tmp_path):
    """keras2_slots: tf.saved_model.load fails ('_UserObject' object has no attribute 'add_slot'); run,
    compare and freeze --verify fall back to the TF1 loader instead of an internal error."""
    src = FIXTURES / "keras2_slots"
    with pytest.raises(AttributeError, match="add_slot"):
        tf.saved_model.load(str(src))
    x = np.random.RandomState(4).randn(5, 3).astype(np.float32)
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        meta = v1.saved_model.loader.load(sess, ["serve"], str(src))
        sig = meta.signature_def["serving_default"]
        want = sess.run(sig.outputs["dense_1"].name, {sig.inputs["dense_input"].name: x})
    got = run(open_runnable(src), {"dense_input": x})
    np.testing.assert_array_equal(got["dense_1"], want)
    report = freeze(src, tmp_path / "f.pb", verify=True)
    assert report.verified[0].ok and report.output_names == {"dense_1": "dense_1"}
    result = runner.invoke(cli, ["compare", str(src), str(tmp_path / "f.pb"), "--quiet"])
    assert result.exit_code == 0, result.output + str(result.stderr)
    assert "internal error" not in result.output + str(result.stderr)


def test_a_graph_tf_refuses_to_import_is_a_one_line_error(tf, runner, tmp_path):
    """What freeze --verify printed as 'internal error: ValueError' for the graphs TF's freezer broke."""
    from graphkit.io import save_graph
    from graphkit.io.graph import Graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    const = gd.node.add(name="c", op="Const")
    const.attr["dtype"].type = 1
    const.attr["value"].tensor.dtype = 1
    const.attr["value"].tensor.float_val.append(1.0)
    gd.node.add(name="read", op="ReadVariableOp", input=["c"]).attr["dtype"].type = 1  # float where resource
    save_graph(Graph(gd), tmp_path / "bad.pb")
    result = runner.invoke(cli, ["run", str(tmp_path / "bad.pb"), "--output", "read", "--quiet"])
    assert result.exit_code == 1 and "internal error" not in result.stderr
    assert "TensorFlow cannot import the graph" in result.stderr and "bad.pb" in result.stderr


def test_every_output_of_a_multi_head_graph(tf, runner, tmp_path):
    """Issue 12.1: run, compare and convert take every clear output (mtcnn: prob, landmarks, box; the
    UltraFace net: scores and boxes), and graphkit's ONNX names (x:0) pair with the graph's (x)."""
    mtcnn = shared("tf_mtcnn_blaueck/mtcnn.pb")
    assert open_runnable(mtcnn).outputs == ["prob", "landmarks", "box"]
    from graphkit.convert import convert
    from graphkit.convert.caffe import caffe2tf

    src = shared("ultraface_1mb")
    caffe2tf(src / "RFB-320.prototxt", src / "RFB-320.caffemodel", tmp_path / "rfb.pb")
    report = convert(tmp_path / "rfb.pb", tmp_path / "rfb.onnx")
    assert sorted(report.outputs) == ["boxes", "scores"]
    result = compare(tmp_path / "rfb.pb", tmp_path / "rfb.onnx", atol=1e-4)
    assert sorted(result.pairs) == [("boxes", "boxes:0"), ("scores", "scores:0")] and result.ok


def test_optional_inputs_keep_their_defaults_on_both_sides(tf, runner):
    """Issue 12.9: a PlaceholderWithDefault (is_training) compared against itself."""
    src = fixture_checkpoint("cfv2_bn_adam")
    result = runner.invoke(cli, ["compare", str(src), str(src), "--quiet"])
    assert result.exit_code == 0, result.output + str(result.stderr)
    assert "ok" in result.output and "is_training" not in str(result.stderr)


def test_tf_run_errors_say_why_and_where(tf, runner, tmp_path):
    """Issue 12.11: a wrong feed names the input and both shapes; a run-time failure shows TF's reason and
    node (not just 'Graph execution error:')."""
    import numpy as np

    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    x.attr["shape"].shape.dim.add().size = -1
    shape = gd.node.add(name="shape", op="Const")
    shape.attr["dtype"].type = 3
    shape.attr["value"].tensor.dtype = 3
    shape.attr["value"].tensor.tensor_shape.dim.add().size = 1
    shape.attr["value"].tensor.int_val.append(3)
    reshape = gd.node.add(name="out", op="Reshape", input=["x", "shape"])
    reshape.attr["T"].type = 1
    reshape.attr["Tshape"].type = 3
    save_graph(Graph(gd), tmp_path / "g.pb")
    np.save(tmp_path / "x.npy", np.ones(5, np.float32))
    result = runner.invoke(cli, ["run", str(tmp_path / "g.pb"), "--input", f"x={tmp_path / 'x.npy'}", "--quiet"])
    assert result.exit_code == 1 and "internal error" not in result.stderr
    assert "Input to reshape is a tensor with 5 values" in result.stderr and "(at node 'out')" in result.stderr
    np.save(tmp_path / "bad.npy", np.ones((2, 2), np.float32))
    result = runner.invoke(cli, ["run", str(tmp_path / "g.pb"), "--input", f"x={tmp_path / 'bad.npy'}", "--quiet"])
    assert result.exit_code == 1 and "Cannot feed value of shape (2, 2) for Tensor x:0" in result.stderr


def test_tf_0x_meta_graphs_run_compare_and_verify(tf, runner, tmp_path):
    """Issue 12.8: tensorflow_version "0.12.head" made TF's import_meta_graph raise InvalidVersion."""
    from graphkit.io import load

    src = shared("tfserving/half_plus_two_tf1_checkpoint/00000123") / "export"
    assert load(src).meta_graph.meta_info_def.tensorflow_version == "0.12.head"
    x = {"Placeholder": np.array([1.0, 3.0], np.float32)}
    assert np.allclose(run(open_runnable(src, outputs=["Add"]), x)["Add"], [2.5, 3.5])
    report = freeze(src, tmp_path / "f.pb", outputs=["Add"], verify=Check(x))  # shape {}: unknown (TF 0.x)
    assert report.verified[0].ok
    np.save(tmp_path / "x.npy", x["Placeholder"])
    result = runner.invoke(cli, ["compare", str(src), str(tmp_path / "f.pb"), "--input",
                                 f"Placeholder={tmp_path / 'x.npy'}", "--quiet"])
    assert result.exit_code == 0, str(result.stderr)


def test_the_python_api_mirrors_run(tf):
    """Issue 12.15: graphkit.run(path, inputs=...) takes what the command takes."""
    import graphkit

    x = np.ones((2, 3), np.float32)
    values = graphkit.run(FIXTURES / "frozen" / "sigmoid.pb", inputs={"x": x})
    assert list(values) == ["y"] and values["y"].shape == (2, 2)
    again = graphkit.run(FIXTURES / "saved_model_tf1", inputs={"x": x}, signature="serving_default")
    np.testing.assert_allclose(again["y"], values["y"], rtol=1e-6)
    assert graphkit.compare(FIXTURES / "frozen" / "sigmoid.pb", FIXTURES / "frozen" / "sigmoid.pbtxt").ok


def test_every_error_names_its_file(tmp_path):
    """Issue 12.11: freeze's unknown output and compare's own errors name the files."""
    from graphkit.errors import GraphkitError

    with pytest.raises(GraphkitError) as err:
        freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb", outputs=["prob"])
    assert str(err.value).startswith(f"{fixture_checkpoint('mlp_ref')}: no node named 'prob'")
    a, b = FIXTURES / "frozen" / "sigmoid.pb", FIXTURES / "saved_model_tf1"
    with pytest.raises(GraphkitError) as err:
        compare(a, b, pairs={"y": "nope"})
    assert str(b) in str(err.value) and "nope" in str(err.value)


def test_run_says_which_candidates_it_did_not_take(tf, runner):
    """Issue 12.1: when a subset of the candidates is taken, say which and why."""
    result = runner.invoke(cli, ["run", str(fixture_checkpoint("mlp_ref"))])
    assert result.exit_code == 0, str(result.stderr)
    assert "note: outputs output; not taken: counts/read: nothing consumes it; depends on no placeholder" \
        in result.stderr
    quiet = runner.invoke(cli, ["run", str(fixture_checkpoint("mlp_ref")), "--quiet"])
    assert "note:" not in quiet.stderr


def test_a_tf_run_failure_is_one_line_without_the_cpp_log(tmp_path):
    """Issue 13.6: TF's C++ log lines of a failed run flooded stderr; the reason names the node."""
    import subprocess
    import sys

    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    pytest.importorskip("tensorflow")
    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
    c = gd.node.add(name="c", op="Const")
    c.attr["dtype"].type = 1
    c.attr["value"].tensor.dtype = 1
    c.attr["value"].tensor.tensor_shape.dim.add().size = 3
    c.attr["value"].tensor.float_val.extend([1.0, 2.0, 3.0])
    gd.node.add(name="y", op="AddV2", input=["x", "c"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    np.save(tmp_path / "x.npy", np.ones(4, np.float32))
    proc = subprocess.run([sys.executable, "-m", "graphkit", "run", str(tmp_path / "g.pb"), "--input",
                           f"x={tmp_path / 'x.npy'}"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'g.pb'}: TensorFlow could not run it: Incompatible shapes: [4] vs. [3] (at node 'y')"]


def test_run_refuses_what_tf_would_abort_on(tf, runner, tmp_path):
    """The corpus found TF aborting the whole process (a CHECK) on a Const whose value has another dtype
    than its dtype attr: `graphkit run` died with no message. It now checks the graph first."""
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    c = gd.node.add(name="c", op="Const")
    c.attr["dtype"].type = 1
    c.attr["value"].tensor.dtype = 3
    c.attr["value"].tensor.int_val.append(1)
    gd.node.add(name="y", op="Identity", input=["c"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    result = runner.invoke(cli, ["run", str(tmp_path / "g.pb")])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (f"error: {tmp_path / 'g.pb'}: the graph would not import in TensorFlow: node 'c' "
                                     "(Const) has dtype 1 but a value of dtype 3")


def test_run_of_an_op_tf_lacks_is_one_line(tf, runner, tmp_path):
    """The corpus found `run` ending in "internal error: NotFoundError" when the graph holds an op TF does
    not register (a bit flip in 'MatMul')."""
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    gd.node.add(name="y", op="LatMul", input=["x", "x"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    result = runner.invoke(cli, ["run", str(tmp_path / "g.pb"), "--outputs", "y", "--input-shape", "x=2,2"])
    assert result.exit_code == 1, result.output
    line, = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'g.pb'}: TensorFlow cannot import the graph: ") and "LatMul" in line


def test_an_input_of_unknown_rank_is_an_error_naming_the_file(tf, runner, tmp_path):
    """The corpus (seed 25): run's "input 'x' has unknown rank" named no file."""
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    x.attr["shape"].shape.unknown_rank = True
    gd.node.add(name="y", op="Identity", input=["x"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    result = runner.invoke(cli, ["run", str(tmp_path / "g.pb"), "-q"])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {tmp_path / 'g.pb'}: input 'x' has unknown rank")
