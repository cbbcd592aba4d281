"""remap-input against tf.import_graph_def(input_map=...)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, read_graph, read_idx, run_graph, shared

from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.io import load, validate
from graphkit.surgery import remap_input


@pytest.fixture(scope="module")
def inception(tf, tmp_path_factory):
    """The seed's Inception-style front end: JPEG bytes -> DecodeJpeg -> Cast -> ExpandDims -> ResizeBilinear
    -> (x - 128) / 128 -> convolutions -> softmax."""
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        jpeg = v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        image = tf.io.decode_jpeg(jpeg, channels=3, name="DecodeJpeg")
        cast = tf.cast(image, tf.float32, name="Cast")
        batch = tf.expand_dims(cast, 0, name="ExpandDims")
        resized = v1.image.resize_bilinear(batch, [299, 299], name="ResizeBilinear")
        norm = tf.multiply(tf.subtract(resized, 128.0, name="Sub"), 1 / 128.0, name="Mul")
        rng = np.random.RandomState(0)
        h = tf.nn.relu(tf.nn.conv2d(norm, rng.randn(3, 3, 3, 8).astype(np.float32), 2, "VALID"), name="conv")
        h = tf.nn.conv2d(h, rng.randn(3, 3, 8, 4).astype(np.float32), 2, "SAME", name="conv_1")
        tf.nn.softmax(tf.reduce_mean(h, [1, 2]), name="softmax")
    path = tmp_path_factory.mktemp("inception") / "inception.pb"
    path.write_bytes(g.as_graph_def(add_shapes=True).SerializeToString())
    return path


def test_decoder_replaced_by_a_float_placeholder(tf, inception, tmp_path):
    out = tmp_path / "float_in.pb"
    report = remap_input(inception, out, placeholders={"Mul:0": "input:float32[?,299,299,3]"}, outputs=["softmax"])
    ours = load(out).graph.graph_def
    assert validate(ours) == []
    names = {n.name for n in ours.node}
    assert not names & {"DecodeJpeg", "DecodeJpeg/contents", "Cast", "ResizeBilinear", "Mul", "Sub"}
    assert report.inputs == [{"name": "input", "dtype": "float32", "shape": [-1, 299, 299, 3]}]  # a list (12.14)
    assert "DecodeJpeg" in report.removed and "input" in report.added
    assert not any("_output_shapes" in n.attr for n in ours.node if n.op in ("Conv2D", "Relu", "Softmax"))  # stale
    x = np.random.RandomState(1).uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)

    def mapped(graph):
        with graph.as_default():
            return tf.compat.v1.placeholder(tf.float32, [None, 299, 299, 3], name="feed")

    want = run_graph(tf, read_graph(tf, inception), ["softmax"], {"feed:0": x}, input_map={"Mul:0": mapped})
    got = run_graph(tf, out, ["softmax"], {"input:0": x})
    np.testing.assert_array_equal(got[0], want[0])


def test_dtype_mismatch_names_the_consumer(inception, tmp_path):
    with pytest.raises(GraphkitError, match="'Cast' \\(Cast\\) takes uint8 from 'DecodeJpeg:0'.*float32"):
        remap_input(inception, tmp_path / "x.pb", placeholders={"DecodeJpeg:0": "img:float32[?,?,3]"})
    assert not (tmp_path / "x.pb").exists()


def test_uint8_image_input_keeps_the_rest_of_the_front_end(tf, inception, tmp_path):
    out = tmp_path / "u8.pb"
    remap_input(inception, out, placeholders={"DecodeJpeg": "image:uint8[?,?,3]"}, outputs=["softmax"])
    names = {n.name for n in load(out).graph.graph_def.node}
    assert "Cast" in names and "DecodeJpeg" not in names and "DecodeJpeg/contents" not in names
    img = np.random.RandomState(2).randint(0, 255, (40, 30, 3)).astype(np.uint8)
    got = run_graph(tf, out, ["softmax"], {"image:0": img})
    want = run_graph(tf, read_graph(tf, inception), ["softmax"], {"DecodeJpeg:0": img})
    np.testing.assert_array_equal(got[0], want[0])


def test_unused_key_is_an_error_as_in_tf(inception, tmp_path):
    with pytest.raises(GraphkitError, match="nothing in the graph reads 'softmax:0'"):
        remap_input(inception, tmp_path / "x.pb", placeholders={"softmax:0": "a:float32[1]"})
    with pytest.raises(GraphkitError, match="not in the graph"):
        remap_input(inception, tmp_path / "x.pb", placeholders={"Mull:0": "a:float32[1]"})


def test_map_to_an_existing_tensor_and_constant(tf, tmp_path):
    v1 = tf.compat.v1
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        keep = v1.placeholder(tf.float32, [], name="keep_prob")
        h = tf.nn.relu(x * 2.0, name="h")
        scaled = tf.multiply(h, keep, name="scaled")
        tf.identity(scaled + 1.0, name="out")
    src = tmp_path / "g.pbtxt"
    from google.protobuf import text_format

    src.write_text(text_format.MessageToString(g.as_graph_def()))
    np.save(tmp_path / "one.npy", np.float32(0.5))
    out = tmp_path / "c.pb"
    report = remap_input(src, out, constants={"keep_prob": np.load(tmp_path / "one.npy")}, outputs=["out"])
    ours = load(out).graph.graph_def
    keep_node = next(n for n in ours.node if n.name == "keep_prob")
    assert keep_node.op == "Const" and [i["name"] for i in report.inputs] == ["x"]
    xv = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(run_graph(tf, out, ["out"], {"x:0": xv})[0],
                                  run_graph(tf, g.as_graph_def(), ["out"], {"x:0": xv, "keep_prob:0": 0.5})[0])
    # --map: skip the scaling, read h directly
    remap_input(src, tmp_path / "m.pb", maps={"scaled:0": "h:0"}, outputs=["out"])
    mapped = load(tmp_path / "m.pb").graph.graph_def
    assert "keep_prob" not in {n.name for n in mapped.node}
    np.testing.assert_array_equal(run_graph(tf, tmp_path / "m.pb", ["out"], {"x:0": xv})[0], np.maximum(xv * 2, 0) + 1)
    with pytest.raises(GraphkitError, match="cycle"):
        remap_input(src, tmp_path / "cyc.pb", maps={"h:0": "out:0"}, outputs=["out"])


UTENSOR = ["add", "add_2", "conv", "matmul", "relu", "argmax", "max_pool_1", "reshape_1", "min_1", "max_2"]


@pytest.mark.parametrize("name", UTENSOR)
def test_utensor_const_inputs_become_placeholders(tf, tmp_path, name):
    """uTensor's op tests: TF-computed outputs for Const inputs. Each Const with a recorded value becomes a
    Placeholder (name kept), is fed the recorded value, and gives the recorded output."""
    folder = shared(f"utensor_tf_op_tests/{name}")
    pb = folder / f"test_{name}.pb"
    gd = load(pb).graph.graph_def
    feeds = {p.name[: -len("_0.idx")]: read_idx(p) for p in folder.glob("*_0.idx")}
    consts = [n.name for n in gd.node if n.op == "Const" and n.name in feeds]
    assert consts, f"{name}: no Const input with a recorded value"
    outputs = (folder / "output_nodes.txt").read_text().split()
    out = tmp_path / "p.pb"
    report = remap_input(pb, out, placeholders={c: c for c in consts}, outputs=outputs)
    assert sorted(i["name"] for i in report.inputs) == sorted(consts)
    shapes = {n.name: [d.size for d in n.attr["value"].tensor.tensor_shape.dim] for n in gd.node if n.name in consts}
    got = run_graph(tf, out, outputs, {f"{c}:0": feeds[c].reshape(shapes[c]) for c in consts})
    for o, value in zip(outputs, got, strict=True):
        want = read_idx(folder / f"output_{o.replace('/', '_')}.idx") if (folder / f"output_{o}.idx").exists() \
            else read_idx(next(folder.glob("output_*.idx")))
        np.testing.assert_allclose(value, want.reshape(value.shape), rtol=1e-5, atol=1e-6)


def test_cli(runner, tmp_path):
    src = FIXTURES / "frozen" / "sigmoid.pb"
    result = runner.invoke(cli, ["remap-input", str(src), str(tmp_path / "o.pb"), "--placeholder", "x=x2:float32[?,3]"])
    assert result.exit_code == 0, result.output
    assert "inputs: x2 float32[?,3]" in result.output
    result = runner.invoke(cli, ["remap-input", str(src), str(tmp_path / "o2.pb"), "--placeholder", "nokey"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["remap-input", str(src), str(tmp_path / "o2.pb"), "--constant", "x=missing.npy"])
    assert result.exit_code == 1 and "missing.npy" in result.stderr
