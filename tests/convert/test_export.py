"""graphkit convert: tf2onnx's own test graphs to ONNX and TFLite, equal to TF; Caffe -> TF -> ONNX equal to
the independent ONNX export of the same network."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, shared

from graphkit.cli import cli
from graphkit.convert import convert
from graphkit.errors import GraphkitError
from graphkit.surgery import remap_input, set_batch

pytest.importorskip("tf2onnx", reason="ONNX export needs the onnx extra")
ort = pytest.importorskip("onnxruntime", reason="ONNX checks need onnxruntime")


def _model(tmp_path, name):
    src = shared(f"tf2onnx_models/{name}/frozen.pb")
    if name in ("lstm", "gru"):  # the dropout keep_prob placeholder becomes a constant first (remap-input)
        fixed = tmp_path / f"{name}_inference.pb"
        remap_input(src, fixed, constants={"keep_prob": np.float32(1.0)}, outputs=["output"])
        if name == "gru":  # its X has no recorded shape: give it one (set-batch)
            shaped = tmp_path / "gru_shaped.pb"
            set_batch(fixed, shaped, inputs=["X[?,784]"])
            return shaped
        return fixed
    return src


@pytest.mark.parametrize("target", ["onnx", "tflite"])
@pytest.mark.parametrize("name", ["fc-layers", "ae0", "lstm", "gru"])
def test_tf2onnx_graphs(tf, tmp_path, name, target):
    out = tmp_path / f"{name}.{target}"
    report = convert(_model(tmp_path, name), out, rtol=1e-5, atol=1e-5)
    assert report.inputs == ["X"] and report.outputs == ["output"] and out.stat().st_size == report.bytes_written
    assert report.verified and all(d.ok and d.max_abs <= 1e-4 for d in report.verified)


def test_lstm_without_the_keep_prob_fix_says_what_to_do(tmp_path):
    with pytest.raises(GraphkitError, match="keep_prob have unknown rank; fix them first, e.g. graphkit remap-input"):
        convert(shared("tf2onnx_models/lstm/frozen.pb"), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_an_input_of_unknown_rank_says_what_to_do(tmp_path):
    """The same refusal on a graph the test makes (the real LSTM above needs ../shared/models)."""
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1  # no shape attr: unknown rank
    gd.node.add(name="y", op="Relu", input=["x"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "g.pb")
    with pytest.raises(GraphkitError, match=r"x have unknown rank; fix them first, e\.g\. graphkit remap-input"):
        convert(tmp_path / "g.pb", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_checkpoint_is_frozen_first(tf, tmp_path):
    report = convert(fixture_checkpoint("mlp_ref"), tmp_path / "m.onnx", outputs=["output"])
    assert report.via == ["freeze"] and report.verified[0].ok


@pytest.mark.parametrize("net", ["RFB-320", "slim-320"])
def test_caffe_to_onnx_matches_the_independent_onnx_export(tf, tmp_path, net):
    base = shared("ultraface_1mb")
    out = tmp_path / f"{net}.onnx"
    report = convert(base / f"{net}.prototxt", out, caffemodel=base / f"{net}.caffemodel")
    assert report.via == ["caffe2tf"]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 240, 320)).astype(np.float32)
    quiet = ort.SessionOptions()
    quiet.log_severity_level = 3
    ours = ort.InferenceSession(str(out), quiet, providers=["CPUExecutionProvider"])
    theirs = ort.InferenceSession(str(base / f"version-{net}_without_postprocessing.onnx"), quiet,
                                  providers=["CPUExecutionProvider"])
    mine = dict(zip(report.outputs, ours.run([f"{o}:0" for o in report.outputs], {"input:0": x}), strict=True))
    names = [o.name for o in theirs.get_outputs()]
    other = dict(zip(names, theirs.run(None, {theirs.get_inputs()[0].name: x}), strict=True))
    for key in ("scores", "boxes"):
        err = np.abs(mine[key] - other[key]).max() / np.abs(other[key]).max()
        assert err <= 1e-4, (key, err)


def test_cli(runner, tmp_path):
    src = FIXTURES / "frozen" / "sigmoid.pb"
    result = runner.invoke(cli, ["convert", str(src), str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "verified y against TensorFlow: max abs" in result.output
    result = runner.invoke(cli, ["convert", str(src), str(tmp_path / "m.zip")])
    assert result.exit_code == 1 and "must end in .onnx or .tflite" in result.stderr


def test_run_and_compare_an_onnx_file(tf, runner, tmp_path):
    src = FIXTURES / "frozen" / "sigmoid.pb"
    onnx_path = tmp_path / "s.onnx"
    convert(src, onnx_path, verify=False)
    result = runner.invoke(cli, ["run", str(onnx_path), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("y:0  float32[2, 2]")
    result = runner.invoke(cli, ["compare", str(src), str(onnx_path), "--pair", "y=y:0", "--rtol", "1e-4",
                                 "--atol", "1e-4"])
    assert result.exit_code == 0, result.output + result.stderr


# ---- TF2: SavedModels and control-flow-v2 graphs, frozen first, every output kept ----------------------

TF2_CASES = [  # (fixture, targets TF's converters accept, the outputs)
    ("keras_cnn", ("onnx", "tflite"), ["output_0"]),
    ("keras_lstm", ("onnx",), ["output_0"]),  # TFLite: TensorList element_shape must be static (tensorflow#62849)
    ("keras_gru", ("onnx",), ["output_0"]),
    ("tf2_module", ("tflite",), ["e", "y"]),  # ONNX: see test_a_model_onnxruntime_cannot_run_is_not_left_behind
    ("tf2_module_readers", ("onnx", "tflite"), ["batched", "nd", "picked", "shape"]),
    ("cfv2_cond", ("onnx", "tflite"), ["output"]),
    ("cfv2_bn_adam", ("onnx", "tflite"), ["output"]),
    ("cfv2_while", ("onnx", "tflite"), ["output"]),
    ("cfv2_gather_in_cond", ("onnx", "tflite"), ["output"]),
    ("cfv2_var_in_cond", ("tflite",), ["output", "shape"]),  # ONNX: tf2onnx's If of constant branches
    ("cfv2_nested", ("tflite",), ["output"]),  # ONNX: see test_a_model_onnxruntime_cannot_run_is_not_left_behind
]


@pytest.mark.parametrize("name, target", [(n, t) for n, targets, _ in TF2_CASES for t in targets])
def test_tf2_models_convert_with_every_output(tf, tmp_path, name, target):
    from conftest import FIXTURES, MANIFEST

    src = fixture_checkpoint(name) if "checkpoint" in MANIFEST[name] else FIXTURES / name
    out = tmp_path / f"{name}.{target}"
    report = convert(src, out, outputs=MANIFEST[name]["outputs"] if name.startswith("cfv2") else None, batch=2)
    assert report.via == ["freeze"] and report.outputs == dict((n, o) for n, _, o in TF2_CASES)[name]
    assert out.stat().st_size == report.bytes_written
    assert [d.output for d in report.verified] == report.outputs
    assert all(d.ok for d in report.verified), report.verified


@pytest.mark.parametrize("name", ["cfv2_nested", "tf2_module", "cfv2_var_in_cond"])
def test_a_model_onnxruntime_cannot_run_is_not_left_behind(tf, tmp_path, name):
    """tf2onnx 1.17 turns these while loops (a cond inside the body) into an ONNX Loop that onnxruntime
    refuses ("Loop subgraph input 0 has unknown shape"); tf2onnx's own --saved-model export of tf2_module
    fails the same way. For an If whose branches are constants it writes a string where ONNX wants a graph
    ("Mismatched attribute type in 'shape_cond : else_branch'"). convert says so, exit 1, and writes
    nothing."""
    from conftest import FIXTURES, MANIFEST

    out = tmp_path / "n.onnx"
    src = fixture_checkpoint(name) if name.startswith("cfv2") else FIXTURES / name
    with pytest.raises(GraphkitError, match="onnxruntime cannot run the ONNX model"):
        convert(src, out, outputs=MANIFEST[name]["outputs"] if name.startswith("cfv2") else None)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_an_op_tf2onnx_cannot_convert_is_named(tf, tmp_path):
    """Issue 12.11: a tf2onnx failure names the node and op (tf2onnx itself writes an unloadable model)."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, 4], name="x")
        tf.math.lgamma(tf.abs(x) + 1.0, name="out")
    (tmp_path / "g.pb").write_bytes(g.as_graph_def().SerializeToString())
    with pytest.raises(GraphkitError, match=r"tf2onnx cannot convert Lgamma \(node 'out'\): tf2onnx has no handler"):
        convert(tmp_path / "g.pb", tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()
