"""graphkit optimize on real models: the optimized graph computes what the original computes in TF
(every output, <= 1e-5 relative), has no more nodes than TF's optimize_for_inference and than Grappler's
constfold + arithmetic + remapping on the same graph, and -- with --target opencv -- loads in OpenCV's
TensorFlow importer and matches TF to 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, read_idx, shared
from tf_ways import grappler, optimize_for_inference

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.freeze import freeze
from graphkit.io import load
from graphkit.io.roles import graph_inputs
from graphkit.optimize import optimize
from graphkit.runtime.difference import Check


def _keras_bn_cnn(tmp):
    freeze(FIXTURES / "keras_bn_cnn", tmp / "f.pb")
    return tmp / "f.pb", {}


def _keras_cnn(tmp):
    freeze(FIXTURES / "keras_cnn", tmp / "f.pb")
    return tmp / "f.pb", {}


def _tf1_bn_dropout(tmp):
    freeze(fixture_checkpoint("tf1_bn_dropout"), tmp / "f.pb", outputs=["output"])
    return tmp / "f.pb", {"fold_defaults": True}


def _tf1_batch_norm(tmp):
    freeze(fixture_checkpoint("batch_norm"), tmp / "f.pb", outputs=["output"])
    return tmp / "f.pb", {"fold_defaults": True}


def _tf2onnx(name):
    def make(tmp):
        src = shared(f"tf2onnx_models/{name}/frozen.pb")
        return src, {"constants": {"keep_prob": np.float32(1.0)}} if name in ("lstm", "gru") else {}
    return make


def _mtcnn(tmp):
    return shared("tf_mtcnn_blaueck/mtcnn.pb"), {}


def _caffe_det1(tmp):
    from graphkit.convert.caffe import caffe2tf

    src = shared("mtcnn_kpzhang")
    caffe2tf(src / "det1.prototxt", src / "det1.caffemodel", tmp / "det1.pb")
    return tmp / "det1.pb", {}


MTCNN_FEEDS = {"input": np.random.default_rng(3).uniform(0, 255, (48, 64, 3)).astype(np.float32),
               "min_size": np.float32(20), "thresholds": np.array([0.6, 0.7, 0.7], np.float32),
               "factor": np.float32(0.709)}
CASES = {
    "keras_bn_cnn": (_keras_bn_cnn, None), "keras_cnn": (_keras_cnn, None), "tf1_bn_dropout": (_tf1_bn_dropout, None),
    "tf1_batch_norm": (_tf1_batch_norm, None), "fc-layers": (_tf2onnx("fc-layers"), None),
    "ae0": (_tf2onnx("ae0"), None), "lstm": (_tf2onnx("lstm"), None),
    "gru": (_tf2onnx("gru"), {"X": np.random.default_rng(2).standard_normal((2, 784)).astype(np.float32)}),
    "mtcnn": (_mtcnn, MTCNN_FEEDS), "caffe_det1": (_caffe_det1, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_optimized_equals_original_with_fewer_nodes_than_tf(tf, tmp_path, name):
    make, feeds = CASES[name]
    src, options = make(tmp_path)
    report = optimize(src, tmp_path / "o.pb", verify=Check(feeds, batch=2, rtol=1e-5, atol=1e-5), **options)
    assert report.verified and all(d.ok for d in report.verified)
    assert len(report.verified) == len(report.outputs)
    assert report.nodes_after < report.nodes_before
    result = load(tmp_path / "o.pb").graph.graph_def
    seen: set[str] = set()
    for node in result.node:  # topological: every input comes first (a loop's NextIteration -> Merge aside)
        late = [i for i in node.input if i.lstrip("^").split(":")[0] not in seen
                and not (node.op == "Merge" and "NextIteration" in i)]
        assert not late, f"{node.name} comes before its input {late[0]}"
        seen.add(node.name)
    raw = load(src).graph.graph_def
    original = raw.SerializeToString()
    inputs = [i.name for i in graph_inputs(raw) if i.name not in options.get("constants", {})]
    theirs = {}
    try:  # Grappler refuses gru's graph ("Failed to import metagraph": its X has no shape)
        theirs["grappler"] = len(grappler(tf, original, report.outputs).node)
    except ValueError:
        assert name == "gru"
    theirs["optimize_for_inference"] = len(optimize_for_inference(tf, original, inputs, report.outputs).node)
    worse = {k: v for k, v in theirs.items() if v < report.nodes_after}
    assert not worse, f"{name}: graphkit {report.nodes_after} nodes, {worse}"


def _opencv_matches_tf(tf, path, x, output):
    cv2 = pytest.importorskip("cv2")
    from conftest import run_graph

    (want,) = run_graph(tf, path, [output], {graph_inputs(load(path).graph.graph_def)[0].name + ":0": x})
    net = cv2.dnn.readNetFromTensorflow(str(path))
    net.setInput(x.transpose(0, 3, 1, 2))
    got = net.forward()
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, shape", [("keras_bn_cnn", (2, 12, 12, 3)), ("tf1_bn_dropout", (2, 10, 10, 3))])
def test_opencv_reads_the_result_for_target_opencv(tf, tmp_path, name, shape):
    """OpenCV 4.13 refuses the frozen Keras 3 CNN ("Input node ... should have at least one output node":
    the dangling NoOps and Identities of the inlined functions); optimize --target opencv makes it, and the
    TF1 graph with batch norm under tf.cond, loadable, and both match TF."""
    cv2 = pytest.importorskip("cv2")
    src, options = CASES[name][0](tmp_path)
    if name == "keras_bn_cnn":
        with pytest.raises(cv2.error):
            cv2.dnn.readNetFromTensorflow(str(src))
    report = optimize(src, tmp_path / "cv.pb", target="opencv", **options)
    ops = {n.op for n in load(tmp_path / "cv.pb").graph.graph_def.node}
    assert not ops & {"_FusedConv2D", "_FusedMatMul", "Switch", "Merge", "FusedBatchNormV3", "NoOp"}
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    _opencv_matches_tf(tf, tmp_path / "cv.pb", x, report.outputs[0])


def test_cli(runner, tmp_path):
    import json

    src = fixture_checkpoint("tf1_bn_dropout")
    freeze(src, tmp_path / "f.pb", outputs=["output"])
    result = runner.invoke(cli, ["optimize", str(tmp_path / "f.pb"), str(tmp_path / "o.pb"), "--constant",
                                 "is_training=false", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["name"] for p in data["passes"]][:3] == ["strip-training", "constants", "dead-branches"]
    assert data["constants"] == {"is_training": "False"} and data["nodes_after"] < data["nodes_before"]
    result = runner.invoke(cli, ["optimize", str(tmp_path / "f.pb"), str(tmp_path / "p.pb"), "--passes", "nope"])
    assert result.exit_code == 1 and "unknown pass nope" in result.stderr
    result = runner.invoke(cli, ["optimize", str(tmp_path / "f.pb"), str(tmp_path / "q.pb"), "--inputs",
                                 "x:float32[?,10,10,3]"])
    assert result.exit_code == 1 and "run graphkit prune --inputs SPEC first" in result.stderr
    result = runner.invoke(cli, ["optimize", str(src), str(tmp_path / "q.pb")])
    assert result.exit_code == 1 and "run graphkit freeze first" in result.stderr
    result = runner.invoke(cli, ["optimize", str(tmp_path / "f.pb"), str(tmp_path / "f.pb")])
    assert result.exit_code == 1 and "overwrite an input" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pb", "o.pb"]


def test_verify_failure_leaves_nothing(tf, tmp_path, monkeypatch):
    """A result that does not compute what the original does is an error, and the file goes."""
    from graphkit.optimize import fold

    freeze(FIXTURES / "keras_bn_cnn", tmp_path / "f.pb")
    original = fold.ELEMENTWISE["Rsqrt"]
    monkeypatch.setitem(fold.EVALUATORS, "Rsqrt", lambda node, args: original(node, args) * 1.5)
    with pytest.raises(GraphkitError, match="the optimized graph differs from the original"):
        optimize(tmp_path / "f.pb", tmp_path / "o.pb", verify=True)
    assert not (tmp_path / "o.pb").exists()


UTENSOR = ["add", "add_2", "add_3", "linreg", "matmul", "conv", "relu", "reshape_1", "reshape_4",  # (quantized_add
           # records the eight-bit graph's output, not the float one's)
           "reshape_5", "reshape_6", "reshape_7", "max_2", "min_1"]


@pytest.mark.parametrize("name", UTENSOR)
def test_utensor_graphs_fold_to_what_tf_computed(tf, tmp_path, name):
    """uTensor's op tests hold TF-computed outputs for graphs whose inputs are Consts: the optimized graph
    (often folded to one constant) gives exactly the original's values, and the recorded ones."""
    from conftest import run_graph

    folder = shared(f"utensor_tf_op_tests/{name}")
    pb = folder / f"test_{name}.pb"
    outputs = (folder / "output_nodes.txt").read_text().split()
    report = optimize(pb, tmp_path / "o.pb", outputs=outputs, verify=Check(rtol=0, atol=0))
    assert all(d.ok and not d.max_abs for d in report.verified)
    for output, value in zip(outputs, run_graph(tf, tmp_path / "o.pb", outputs, {}), strict=True):
        recorded = folder / f"output_{output.replace('/', '_')}.idx"
        want = read_idx(recorded if recorded.exists() else next(folder.glob("output_*.idx")))
        np.testing.assert_allclose(value, want.reshape(value.shape), rtol=1e-5, atol=1e-6)
