"""Loading every format, parity with TensorFlow's own parse, lossless round trips, the large-file path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, SHARED, shared

import graphkit.io.loader as load_mod
from graphkit.errors import GraphkitError
from graphkit.io import Graph, load, save_graph, topological_order, validate
from graphkit.io.graph import FileSlice, parse_ref
from graphkit.io.save import check_output, graph_chunks, materialize
from graphkit.proto import graph_pb2

CASES = {
    "fixtures/tf/mlp_ref": "checkpoint",
    "fixtures/tf/mlp_ref/model.ckpt-3": "checkpoint",
    "fixtures/tf/mlp_ref/model.ckpt-3.index": "checkpoint",
    "fixtures/tf/mlp_ref/model.ckpt-3.meta": "metagraph",
    "fixtures/tf/mlp_ref/graph.pbtxt": "graphdef",
    "fixtures/tf/resource_sharded/model.ckpt.data-00001-of-00002": "checkpoint",
    "fixtures/tf/saved_model_tf1": "savedmodel",
    "fixtures/tf/saved_model_tf1/saved_model.pb": "savedmodel",
    "fixtures/tf/frozen/sigmoid.pb": "graphdef",
    "fixtures/tf/frozen/sigmoid.pbtxt": "graphdef",
    "fixtures/tf/dtypes/ckpt": "checkpoint",
    "fixtures/tf/tf2_checkpoint": "checkpoint",
}


@pytest.mark.parametrize("rel,fmt", sorted(CASES.items()))
def test_format_is_detected(rel, fmt):
    model = load(FIXTURES.parent.parent / rel)
    assert model.format == fmt
    if model.graph is not None:
        assert validate(model.graph.graph_def) == []


def test_format_detected_from_content_not_extension(tmp_path):
    odd = tmp_path / "graph.bin"
    odd.write_bytes((FIXTURES / "frozen" / "sigmoid.pb").read_bytes())
    assert load(odd).format == "graphdef"
    meta = tmp_path / "exported"
    meta.write_bytes((FIXTURES / "mlp_ref" / "model.ckpt-3.meta").read_bytes())
    assert load(meta).format == "metagraph"
    text = tmp_path / "graph.data"
    text.write_text((FIXTURES / "frozen" / "sigmoid.pbtxt").read_text())
    assert load(text).format == "graphdef" and load(text).text


def _tf_graph_def(tf, path):
    gd = tf.compat.v1.GraphDef()
    if str(path).endswith(".pbtxt"):
        from google.protobuf import text_format

        text_format.Parse(path.read_text(), gd)
    elif str(path).endswith(".meta"):
        meta = tf.compat.v1.MetaGraphDef()
        meta.ParseFromString(path.read_bytes())
        gd = meta.graph_def
    else:
        gd.ParseFromString(path.read_bytes())
    return gd


GRAPH_FILES = ["mlp_ref/model.ckpt-3.meta", "mlp_ref/graph.pbtxt", "resource_sharded/model.ckpt.meta",
               "control_flow/model.ckpt.meta", "frozen/sigmoid.pb"]


@pytest.mark.parametrize("rel", GRAPH_FILES)
def test_same_nodes_ops_inputs_as_tensorflow(tf, rel):
    path = FIXTURES / rel
    theirs = _tf_graph_def(tf, path)
    ours = load(path).graph.graph_def
    assert [(n.name, n.op, list(n.input)) for n in ours.node] == [
        (n.name, n.op, list(n.input)) for n in theirs.node]
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


def test_shared_graphs_same_as_tensorflow(tf):
    for rel in ["tf_mtcnn_blaueck/mtcnn.pb", "tf2onnx_models/lstm/frozen.pb", "tf2onnx_models/gru/frozen.pb"]:
        path = shared(rel)
        theirs = tf.compat.v1.GraphDef.FromString(path.read_bytes())
        assert load(path).graph.graph_def.SerializeToString(deterministic=True) == theirs.SerializeToString(
            deterministic=True)


@pytest.mark.parametrize("suffix", [".pb", ".pbtxt"])
def test_round_trip_is_lossless(tmp_path, suffix):
    src = load(FIXTURES / "resource_sharded" / "model.ckpt.meta")
    gd = src.graph.graph_def
    assert gd.library.function or gd.versions.producer  # something beyond nodes to lose
    out = tmp_path / f"g{suffix}"
    save_graph(src.graph, out)
    again = load(out).graph.graph_def
    assert again == gd
    assert again.versions == gd.versions and again.library == gd.library


def test_metagraph_round_trip(tmp_path):
    src = load(FIXTURES / "mlp_ref" / "model.ckpt-3.meta")
    out = tmp_path / "copy.meta"
    save_graph(src.graph, out, meta_graph=src.meta_graph)
    again = load(out)
    assert again.format == "metagraph"
    assert again.meta_graph == src.meta_graph


def _big_graph() -> graph_pb2.GraphDef:
    from graphkit.io.tensors import from_numpy

    gd = graph_pb2.GraphDef()
    gd.versions.producer = 1234
    rng = np.random.RandomState(0)
    for i, size in enumerate([10, 70_000, 5, 200_000]):
        node = gd.node.add(name=f"w{i}", op="Const")
        node.attr["dtype"].type = 1
        node.attr["value"].tensor.CopyFrom(from_numpy(rng.randn(size).astype(np.float32)))
    gd.node.add(name="sum", op="AddN", input=["w0", "w1"]).attr["T"].type = 1
    gd.library.function.add().signature.name = "f"
    return gd


def test_large_file_path_keeps_weights_in_the_file(tmp_path, monkeypatch):
    gd = _big_graph()
    src = tmp_path / "big.pb"
    src.write_bytes(gd.SerializeToString())
    monkeypatch.setattr(load_mod, "STRIP_ABOVE", 1024)
    model = load(src)
    graph = model.graph
    assert set(graph.external) == {"w1", "w3"}  # only payloads above 64 KiB are left in the file
    assert graph.graph_def.node[1].attr["value"].tensor.tensor_content == b""
    assert len(graph.graph_def.SerializeToString()) < 10_000
    for node in gd.node[:4]:
        assert graph.const(graph.graph_def.node[list(n.name for n in gd.node).index(node.name)]).tobytes() == \
            node.attr["value"].tensor.tensor_content
    assert materialize(graph) == gd
    out = tmp_path / "copy.pb"
    save_graph(graph, out)
    assert graph_pb2.GraphDef.FromString(out.read_bytes()) == gd
    assert any(isinstance(c, FileSlice) for c in graph_chunks(graph))  # payloads are copied file to file


def test_topological_order_cuts_while_loops():
    model = load(FIXTURES / "control_flow" / "model.ckpt.meta")
    order = topological_order(model.graph.graph_def)
    pos = {n: i for i, n in enumerate(order)}
    assert len(order) == len(model.graph.graph_def.node)
    for node in model.graph.graph_def.node:
        for text in node.input:
            ref = parse_ref(text)
            if node.op == "Merge" and "NextIteration" in ref.node:
                continue
            assert pos[ref.node] < pos[node.name]


def test_topological_order_on_grappler_while_loop():
    model = load(shared("tf_grappler_pbtxt/while_loop.pbtxt"))
    assert len(topological_order(model.graph.graph_def)) == len(model.graph.graph_def.node)


def test_a_real_cycle_is_an_error():
    gd = graph_pb2.GraphDef()
    gd.node.add(name="a", op="Identity", input=["b"])
    gd.node.add(name="b", op="Identity", input=["a"])
    with pytest.raises(GraphkitError, match="cycle"):
        topological_order(gd)


def test_validate_reports_problems():
    gd = graph_pb2.GraphDef()
    gd.node.add(name="a", op="Const")
    gd.node.add(name="a", op="Const")
    node = gd.node.add(name="b", op="Identity", input=["missing:0", "^gone"])
    node.attr["_class"].list.s.append(b"loc:@nowhere")
    problems = validate(gd)
    assert any("duplicate node name 'a'" in p for p in problems)
    assert any("'missing:0'" in p for p in problems) and any("'^gone'" in p for p in problems)
    assert any("colocated with 'nowhere'" in p for p in problems)


def test_parse_ref():
    assert parse_ref("a/b:2").node == "a/b" and parse_ref("a/b:2").port == 2
    assert parse_ref("^ctl").control and str(parse_ref("x:0")) == "x" and parse_ref("x").tensor == "x:0"
    for bad in ["a:b:c", "^a:1", ""]:
        with pytest.raises(GraphkitError):
            parse_ref(bad)


def test_output_never_overwrites_an_input(tmp_path):
    src = tmp_path / "g.pb"
    src.write_bytes((FIXTURES / "frozen" / "sigmoid.pb").read_bytes())
    model = load(src)
    with pytest.raises(GraphkitError, match="overwrite an input"):
        save_graph(model.graph, src, inputs=model.files)
    with pytest.raises(GraphkitError, match="does not exist"):
        check_output(tmp_path / "no" / "out.pb")


def test_failed_write_leaves_nothing(tmp_path):
    graph = Graph(graph_pb2.GraphDef())
    graph.external["x"] = "not bytes"  # type: ignore[assignment]
    graph.graph_def.node.add(name="x", op="Const")
    with pytest.raises(TypeError):
        save_graph(graph, tmp_path / "out.pb")
    assert list(tmp_path.iterdir()) == []


def test_every_shared_tf_model_loads():
    if not SHARED.exists():
        pytest.skip(f"real third-party models not available ({SHARED} is absent)")
    paths = sorted(SHARED.glob("**/*.pb")) + sorted(SHARED.glob("**/*.pbtxt"))
    assert len(paths) > 70
    for path in paths:
        if path.name == "fingerprint.pb":
            with pytest.raises(GraphkitError, match="fingerprint; give the SavedModel folder"):
                load(path)
            continue
        model = load(path.parent if path.name == "saved_model.pb" else path)
        assert model.graph is not None and model.graph.graph_def.node, path
        assert validate(model.graph.graph_def) == [], path


def test_text_metagraph_and_text_saved_model(tmp_path):
    from google.protobuf import text_format

    from graphkit.proto import saved_model_pb2

    src = load(FIXTURES / "mlp_ref" / "model.ckpt-3.meta")
    out = tmp_path / "model.meta.pbtxt"
    save_graph(src.graph, out, meta_graph=src.meta_graph)
    again = load(out)
    assert again.format == "metagraph" and again.text and again.meta_graph == src.meta_graph
    saved = saved_model_pb2.SavedModel.FromString((FIXTURES / "saved_model_tf1" / "saved_model.pb").read_bytes())
    folder = tmp_path / "sm"
    folder.mkdir()
    (folder / "saved_model.pbtxt").write_text(text_format.MessageToString(saved))
    model = load(folder)
    assert model.format == "savedmodel" and model.text and model.tags == ["serve"]


def test_odd_paths_are_one_line_errors(tmp_path):
    """Issue 13.1, 13.7, 13.10: a state file naming a path component over the name limit falls back to the
    checkpoint beside it; a FIFO is refused before it is opened (it would block); a GraphDef named
    saved_model.pb is not read as an empty SavedModel."""
    import os
    import shutil

    from conftest import fixture_checkpoint

    from graphkit.errors import GraphkitError
    from graphkit.io import load

    src = fixture_checkpoint("mlp_ref")
    for f in src.parent.glob(src.name + ".*"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "checkpoint").write_text(f'model_checkpoint_path: "/{"x" * 300}/model.ckpt-3"\n')
    assert load(tmp_path).checkpoint.prefix == tmp_path / "model.ckpt-3"
    fifo = tmp_path / "model.pb"
    os.mkfifo(fifo)
    with pytest.raises(GraphkitError, match="not a regular file or folder"):
        load(fifo)
    with pytest.raises(GraphkitError, match="File name too long|cannot read"):
        load(tmp_path / ("y" * 300))
    fake = tmp_path / "sm"
    fake.mkdir()
    shutil.copy(FIXTURES / "frozen" / "sigmoid.pb", fake / "saved_model.pb")
    for path in (fake, fake / "saved_model.pb"):
        with pytest.raises(GraphkitError, match="holds a GraphDef's nodes, not a SavedModel"):
            load(path)


def test_outputs_that_cannot_be_written_are_one_line_errors(tmp_path, monkeypatch, runner):
    """Issue 13.2: an over-long OUT name, a folder the process cannot write in, --logdir naming a file."""
    import tempfile

    from graphkit.cli import cli

    src = FIXTURES / "frozen" / "sigmoid.pb"
    result = runner.invoke(cli, ["prune", str(src), str(tmp_path / ("o" * 300 + ".pb"))])
    assert result.exit_code == 1 and ("File name too long" in result.stderr or "allow 255" in result.stderr)
    (tmp_path / "file").write_text("")
    result = runner.invoke(cli, ["tensorboard", str(src), "--logdir", str(tmp_path / "file")])
    assert result.exit_code == 1 and "--logdir names a file" in result.stderr

    def refused(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)  # as a read-only folder does (root passes os.access)
    caffe = shared("mtcnn_kpzhang")
    result = runner.invoke(cli, ["caffe2tf", str(caffe / "det1.prototxt"), str(caffe / "det1.caffemodel"),
                                 str(tmp_path / "c.pb")])
    assert result.exit_code == 1 and "cannot write a spill file here: Permission denied" in result.stderr
    denied = runner.invoke(cli, ["prune", str(src), str(tmp_path / "p.pb")])
    assert "cannot write here: Permission denied" in denied.stderr
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("dims, says", [([3, 1 << 40], "would take 12288.0 GiB decoded"),
                                        ([1 << 20, 1 << 20], "would take 4096.0 GiB decoded"),
                                        ([-2, 3], "has a negative dimension"),
                                        ([1 << 40, 1 << 40], "more elements than int64 counts")])
def test_impossible_constants_are_refused_before_allocating(tmp_path, runner, dims, says):
    """Issue 13.4: inspect --tensor of a Const of shape [3, 2^40]... said MemoryError/ValueError."""
    from graphkit.cli import cli
    from graphkit.io import Graph, save_graph
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    const = gd.node.add(name="c", op="Const")
    const.attr["dtype"].type = 1
    const.attr["value"].tensor.dtype = 1
    for d in dims:
        const.attr["value"].tensor.tensor_shape.dim.add().size = d
    const.attr["value"].tensor.float_val.extend([1.0, 2.0])  # two values: not a splat, so it must be decoded
    save_graph(Graph(gd), tmp_path / "g.pb")
    result = runner.invoke(cli, ["inspect", str(tmp_path / "g.pb"), "--tensor", "c"])
    assert result.exit_code == 1 and says in result.stderr and str(tmp_path / "g.pb") in result.stderr


def test_a_text_graph_nested_3000_deep_is_refused(tmp_path):
    """Issue 13.3: RecursionError in the text parser."""
    from graphkit.errors import GraphkitError
    from graphkit.io import load

    level = 'attr { key: "k" value { func { name: "f" '
    (tmp_path / "deep.pbtxt").write_text('node { name: "a" op: "X" ' + level * 3000 + "} } } " * 3000 + "}\n")
    with pytest.raises(GraphkitError, match="nested too deeply"):
        load(tmp_path / "deep.pbtxt")


def test_device_strings_are_judged_as_tf_import_graph_def_judges_them(tf):
    """graphkit's device check is a port of DeviceSpecV2._string_to_components; TF is the oracle."""
    from tensorflow.python.framework import device_spec

    from graphkit.io.checks import device_problem

    cases = ["", "/cpu:0", "CPU:0", "/device:CPU:0", "/job:localhost/replica:0/task:0/device:CPU:0", "/tpu",
             "/device:XPU:0", "/device:GPU:*", "//cpu:0", "/job:worker/task:1", "/device2CPU:0", "/gpu:x",
             "/cpu:0/gpu:0", "/foo:1", "/cpu:0:1", "/job:a:b", "/replica:x", "/task:-1"]
    for spec in cases:
        try:
            device_spec.DeviceSpecV2.from_string(spec)
            refused = False
        except ValueError:
            refused = True
        assert (device_problem(spec) is not None) == refused, spec


def test_sort_topologically_keeps_order_where_it_can_and_loops_as_they_are():
    """Nodes after their inputs, the file's order kept among independent ones; a TF1 loop's
    NextIteration -> Merge edge is the one cycle allowed; any other cycle leaves the order alone."""
    from graphkit.io.passes import sort_topologically_in_place
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    for name, op, inputs in (("b", "Identity", ["a"]), ("a", "Const", []), ("c", "Const", []),
                             ("merge", "Merge", ["a", "next"]), ("next", "NextIteration", ["body"]),
                             ("body", "Identity", ["merge", "^c"])):
        gd.node.add(name=name, op=op, input=inputs)
    assert sort_topologically_in_place(gd)
    assert [n.name for n in gd.node] == ["a", "b", "c", "merge", "body", "next"]
    assert not sort_topologically_in_place(gd)
    cyclic = graph_pb2.GraphDef()
    cyclic.node.add(name="x", op="Identity", input=["y"])
    cyclic.node.add(name="y", op="Identity", input=["x"])
    assert not sort_topologically_in_place(cyclic) and [n.name for n in cyclic.node] == ["x", "y"]


def test_a_type_its_op_does_not_allow_is_refused():
    """TF's ValidateNodeDef refuses an attr type outside the OpDef's allowed list ("Value for attr 'T' of
    double is not in the list of allowed values"); validate says so (for parsed nodes: a scanned file's
    unparsed nodes have only their DataType enums checked)."""
    from graphkit.io import validate
    from graphkit.proto import graph_pb2

    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 7
    gd.node.add(name="r", op="Relu", input=["x"]).attr["T"].type = 7  # Relu of strings
    assert any("node 'r' (Relu) has attr 'T' = string, which its op does not allow" in p for p in validate(gd))
