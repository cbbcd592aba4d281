"""inspect --target: the ops a deployment target cannot run, with node names."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from graphkit.cli import cli
from graphkit.io import load
from graphkit.runtime.targets import unsupported_ops


@pytest.fixture(scope="module")
def graph(tf, tmp_path_factory):
    """float ops TFLite lacks (Cumprod, MatrixDeterminant -> Flex) and one ONNX lacks (Lgamma)."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, 4], name="x")
        y = tf.math.cumprod(x, axis=1, exclusive=True, name="y")
        det = tf.linalg.det(tf.reshape(y, [1, 2, 2]), name="det")
        tf.math.lgamma(tf.abs(det) + 1.0, name="out")
    path = tmp_path_factory.mktemp("targets") / "g.pb"
    path.write_bytes(g.as_graph_def().SerializeToString())
    return path


def test_tflite_lists_flex_ops(graph):
    missing = unsupported_ops(load(graph).graph.graph_def, "tflite", outputs=["out"])
    assert missing["Cumprod"]["nodes"] == ["y"] and missing["MatrixDeterminant"]["nodes"] == ["det"]
    assert "Flex" in missing["Cumprod"]["note"]


def test_onnx_uses_tf2onnx_handlers(graph):
    pytest.importorskip("tf2onnx")
    missing = unsupported_ops(load(graph).graph.graph_def, "onnx")
    assert list(missing) == ["Lgamma"] and missing["Lgamma"]["nodes"] == ["out"]


def test_tf_kernels_and_custom_ops(tf, tmp_path):
    from graphkit.proto import graph_pb2

    gd = load(FIXTURES / "frozen" / "sigmoid.pb").graph.graph_def
    assert unsupported_ops(gd, "tf") == {}
    custom = graph_pb2.GraphDef()
    custom.CopyFrom(gd)
    custom.node.add(name="mine", op="MyCustomOp", input=["y"])
    assert unsupported_ops(custom, "tf")["MyCustomOp"]["nodes"] == ["mine"]


def test_cli(runner, graph):
    result = runner.invoke(cli, ["inspect", str(graph), "--target", "tflite"])
    assert result.exit_code == 1, result.output  # something cannot run: CI can gate on it (issue 12.13)
    assert "2 op type(s)" in result.output and "Cumprod: not a TFLite builtin" in result.output
    data = json.loads(runner.invoke(cli, ["inspect", str(graph), "--target", "tf", "--json"]).output)
    assert data == {"target": "tf", "unsupported": {}}


@pytest.mark.parametrize("target", ["tf", "onnx"])
def test_tf1_loops_run_in_the_executor_and_convert(tf, runner, target):
    """A TF1 while loop (Enter/Merge/Switch/NextIteration/Exit/LoopCond): TF's executor runs those without
    kernels of their own and tf2onnx's loop rewriter converts them; neither is 'unsupported'."""
    from conftest import fixture_checkpoint

    model = load(fixture_checkpoint("control_flow"))
    assert {"NextIteration", "LoopCond", "Switch", "Merge"} <= {n.op for n in model.graph.graph_def.node}
    result = runner.invoke(cli, ["inspect", str(fixture_checkpoint("control_flow")), "--target", target, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["unsupported"] == {}
