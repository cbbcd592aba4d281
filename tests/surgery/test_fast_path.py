"""prune and remap-input through the compiled scanner's table (graphkit.io.scan) equal the protobuf path:
the same GraphDef, the same report, the same errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, shared

from graphkit.errors import GraphkitError
from graphkit.io import load, scan, validate
from graphkit.io.roles import likely_outputs
from graphkit.proto import graph_pb2
from graphkit.surgery import core, prune, remap_input

pytestmark = pytest.mark.skipif(not scan.available(), reason="the compiled scanner is not in use (not built, or "
                                                              "GRAPHKIT_NO_SCANNER is set)")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    """The fixtures' training graphs as binary GraphDefs: colocations, _output_shapes, TF1 control flow."""
    folder = tmp_path_factory.mktemp("graphs")
    out = {}
    for name in ("mlp_ref", "batch_norm", "control_flow"):
        meta = next((FIXTURES / name).glob("*.meta"))
        out[name] = folder / f"{name}.pb"
        out[name].write_bytes(load(meta).graph.graph_def.SerializeToString())
    out["sigmoid"] = FIXTURES / "frozen" / "sigmoid.pb"
    return out


def _both(monkeypatch, tmp_path, fn, src, **options):
    """Run ``fn`` on the table (asserting it was used) and on protobuf; return both results' GraphDefs and
    reports."""
    used = []
    real = core.write_table

    def spy(*args, **kwargs):
        used.append(True)
        return real(*args, **kwargs)

    results = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            m.setattr(core, "write_table", spy)
            if not fast:
                m.setattr(scan, "_wirescan", None)
            out = tmp_path / f"{'fast' if fast else 'slow'}.pb"
            report = fn(src, out, **options)
        gd = graph_pb2.GraphDef.FromString(out.read_bytes())
        assert validate(gd) == []
        results.append((gd, {k: v for k, v in report.__dict__.items() if k not in ("output_path", "bytes_written")}))
    assert used == [True], "the fast path was not taken"
    (fast_gd, fast_report), (slow_gd, slow_report) = results
    assert fast_report == slow_report
    assert [n.name for n in fast_gd.node] == [n.name for n in slow_gd.node]
    assert fast_gd == slow_gd
    return fast_gd, fast_report


@pytest.mark.parametrize(("name", "outputs"), [
    ("mlp_ref", ["output"]), ("mlp_ref", ["train"]), ("batch_norm", ["init", "save/restore_all"]),
    ("control_flow", None), ("sigmoid", None)])
def test_prune_equals_the_protobuf_path(monkeypatch, tmp_path, graphs, name, outputs):
    """``outputs=None``: the likely outputs, found on the table as on the GraphDef."""
    gd, report = _both(monkeypatch, tmp_path, prune, graphs[name], outputs=outputs)
    assert report["removed"] or name == "sigmoid"
    assert report["outputs"] == (outputs or [o.name for o in likely_outputs(load(graphs[name]).graph.graph_def)])


@pytest.mark.parametrize("inputs", [["hidden"], ["MatMul_1:0:float32[?,4]", "x"]], ids=["in-place", "two"])
def test_prune_cut_equals_the_protobuf_path(monkeypatch, tmp_path, graphs, inputs):
    gd, report = _both(monkeypatch, tmp_path, prune, graphs["mlp_ref"], outputs=["output"], inputs=inputs)
    assert {n.name: n.op for n in gd.node}[inputs[0].split(":")[0]] == "Placeholder"
    assert "MatMul" not in {n.name for n in gd.node}


def test_prune_cut_at_a_second_output_equals_the_protobuf_path(monkeypatch, tmp_path):
    gd = graph_pb2.GraphDef()
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 1
    axis = gd.node.add(name="axis", op="Const")
    axis.attr["dtype"].type = 3
    axis.attr["value"].tensor.dtype = 3
    axis.attr["value"].tensor.int_val.append(1)
    split = gd.node.add(name="split", op="Split", input=["axis", "x"])
    split.attr["T"].type = 1
    split.attr["num_split"].i = 2
    both = gd.node.add(name="both", op="ConcatV2", input=["split", "split:1", "axis"])
    both.attr["T"].type = 1
    both.attr["N"].i = 2
    src = tmp_path / "split.pb"
    src.write_bytes(gd.SerializeToString())
    out, report = _both(monkeypatch, tmp_path, prune, src, outputs=["both"], inputs=["split:1"])
    assert report["rewritten"] == ["split_1"]
    assert [list(n.input) for n in out.node if n.name == "both"] == [["split", "split_1", "axis"]]


def test_prune_on_real_models_equals_the_protobuf_path(monkeypatch, tmp_path):
    for rel in ("tf_mtcnn_blaueck/mtcnn.pb", "tf2onnx_models/lstm/frozen.pb", "tf2onnx_models/gru/frozen.pb"):
        src = shared(rel)
        outputs = [o.name for o in likely_outputs(load(src).graph.graph_def)][:3]
        _both(monkeypatch, tmp_path, prune, src, outputs=outputs)
    cut, pred = "rnet/cond/CropAndResize", "rnet/Greater"  # a cut inside a tf.cond, with stale shapes
    _both(monkeypatch, tmp_path, prune, shared("tf_mtcnn_blaueck/mtcnn.pb"), outputs=["rnet/cond/prob1"],
          inputs=[f"{cut}:0", pred], input_shapes={cut: "?,24,24,3"})


@pytest.mark.parametrize("options", [
    {"placeholders": {"x:0": "feat:float32[?,8]"}, "outputs": None},
    {"maps": {"dense1/weights/read:0": "dense1/weights/Momentum/read:0"}},
    {"constants": {"x": np.ones((2, 8), np.float32)}},  # the new Const takes the freed name 'x'
], ids=["placeholder", "map", "constant"])
def test_remap_equals_the_protobuf_path(monkeypatch, tmp_path, graphs, options):
    options = {"outputs": ["output"], **options}
    gd, report = _both(monkeypatch, tmp_path, remap_input, graphs["mlp_ref"], **options)
    assert report["rewritten"] and report["removed"]


def test_remap_drops_stale_shapes_like_the_protobuf_path(monkeypatch, tmp_path, graphs):
    gd, report = _both(monkeypatch, tmp_path, remap_input, graphs["batch_norm"], outputs=["output"],
                       placeholders={"x:0": "feat:float32[?,?]"})
    by_name = {n.name: n for n in gd.node}
    assert "_output_shapes" not in by_name["MatMul"].attr
    assert any("_output_shapes" in n.attr for n in gd.node)  # upstream of the change they stay


def test_control_map_and_colocations_equal_the_protobuf_path(monkeypatch, tmp_path):
    gd = graph_pb2.GraphDef()
    gd.node.add(name="x", op="Placeholder").attr["dtype"].type = 1
    gd.node.add(name="a", op="NoOp")
    gd.node.add(name="b", op="NoOp")
    y = gd.node.add(name="y", op="Identity", input=["x", "^a", "^b"])
    y.attr["T"].type = 1
    y.attr["_class"].list.s.extend([b"loc:@a", b"loc:@x"])
    src = tmp_path / "small.pb"
    src.write_bytes(gd.SerializeToString())
    out, _ = _both(monkeypatch, tmp_path, remap_input, src, outputs=["y"], maps={"^a": "^b"})
    assert [list(n.input) for n in out.node if n.name == "y"] == [["x", "^b"]]
    assert [list(n.attr["_class"].list.s) for n in out.node if n.name == "y"] == [[b"loc:@x"]]


def test_errors_are_the_same_on_both_paths(monkeypatch, tmp_path, graphs):
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(scan, "_wirescan", None)
            with pytest.raises(GraphkitError, match=r"no node named 'outptu'.*closest: output"):
                prune(graphs["mlp_ref"], tmp_path / "x.pb", outputs=["outptu"])
            with pytest.raises(GraphkitError, match="nothing in the graph reads 'output:0'"):
                remap_input(graphs["mlp_ref"], tmp_path / "x.pb", outputs=["output"],
                            placeholders={"output:0": "o:float32[?,4]"})
            with pytest.raises(GraphkitError, match="overwrite an input"):
                prune(graphs["mlp_ref"], graphs["mlp_ref"], outputs=["output"])
        assert not (tmp_path / "x.pb").exists()


def test_the_fast_path_never_parses_the_whole_graph(monkeypatch, tmp_path, graphs):
    """prune on a binary GraphDef does not load it through protobuf at all."""
    def refuse(*args, **kwargs):
        raise AssertionError("the protobuf loader was used")

    monkeypatch.setattr(core, "open_graph", refuse)
    report = prune(graphs["mlp_ref"], tmp_path / "p.pb", outputs=["output"])
    assert report.nodes_after < report.nodes_before
    prune(graphs["mlp_ref"], tmp_path / "c.pb", outputs=["output"], inputs=["hidden"])
    prune(graphs["mlp_ref"], tmp_path / "d.pb")
    with pytest.raises(AssertionError):  # --strip-training takes the protobuf path
        prune(graphs["mlp_ref"], tmp_path / "p.pb", outputs=["output"], strip_training=True)
    with pytest.raises(AssertionError):  # and so does text output
        prune(graphs["mlp_ref"], tmp_path / "p.pbtxt", outputs=["output"])


def test_prune_and_remap_import_neither_numpy_nor_tensorflow(tmp_path, graphs):
    """The start-up cost is part of the speed: a graph-only command on a binary GraphDef loads no numpy."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from graphkit.surgery import prune, remap_input\n"
        f"prune({str(graphs['mlp_ref'])!r}, {str(tmp_path / 'p.pb')!r}, outputs=['output'])\n"
        f"remap_input({str(graphs['mlp_ref'])!r}, {str(tmp_path / 'r.pb')!r}, outputs=['output'],"
        " placeholders={'x:0': 'feat:float32[?,8]'})\n"
        "print(sorted(m for m in ('numpy', 'tensorflow', 'ml_dtypes') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _small_graph() -> graph_pb2.GraphDef:
    """x -> y -> out, with a marker attr, a function-valued attr and a Const whose ints are packed."""
    gd = graph_pb2.GraphDef()
    gd.versions.producer = 1700
    x = gd.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = 3
    c = gd.node.add(name="c", op="Const")
    c.attr["dtype"].type = 3
    c.attr["value"].tensor.dtype = 3
    c.attr["value"].tensor.tensor_shape.dim.add().size = 3
    c.attr["value"].tensor.int_val.extend([1, 2, 3])
    y = gd.node.add(name="y", op="AddV2", input=["x", "c"])
    y.attr["T"].type = 3
    y.attr["_marker"].s = b"keep"
    y.attr["_fn"].func.name = "fname"
    gd.node.add(name="out", op="Identity", input=["y"]).attr["T"].type = 3
    return gd


def _damaged(kind: str) -> bytes:
    data = bytearray(_small_graph().SerializeToString())
    if kind == "attr key not UTF-8":  # the issue's case: a bit flip in an attr key of a node no pass changes
        data[data.index(b"_marker")] = 0xDF  # a lead byte followed by ASCII: invalid
    elif kind == "nested name not UTF-8":
        data[data.index(b"fname")] = 0xFF
    elif kind == "packed varint cut":
        packed = bytes([0x3A, 3, 1, 2, 3])  # TensorProto.int_val, packed
        data[data.index(packed) + 4] = 0x83  # the last varint never ends
    return bytes(data)


@pytest.mark.parametrize("kind", ["attr key not UTF-8", "nested name not UTF-8", "packed varint cut"])
def test_corrupt_nodes_are_not_copied_into_the_output(monkeypatch, tmp_path, kind):
    """Issue 13.9: the fast path copied unchanged nodes' bytes unchecked, so a corrupt node protobuf refuses
    reached the output with exit 0. Now the scanner checks every node's wire form as strictly as protobuf
    and the command refuses the file on both paths, writing nothing."""
    from google.protobuf.message import DecodeError

    data = _damaged(kind)
    with pytest.raises(DecodeError):
        graph_pb2.GraphDef.FromString(data)  # what protobuf refuses...
    src = tmp_path / "bad.pb"
    src.write_bytes(data)
    assert scan.scan_graph_file(src) is None  # ...the scanner hands to the protobuf path
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(scan, "_wirescan", None)
            with pytest.raises(GraphkitError, match="bad.pb"):
                prune(src, tmp_path / "o.pb", outputs=["out"])
        assert not (tmp_path / "o.pb").exists()


def test_the_check_accepts_what_protobuf_accepts(tmp_path, graphs):
    """The other side: valid files, including unknown fields and deep but legal nesting, keep the fast path."""
    from graphkit.io import _wirescan

    for path in graphs.values():
        _wirescan.check(path.read_bytes(), *scan._graph_schema())
    gd = _small_graph()
    gd.node[0].attr["_fn"].func.attr["inner"].func.name = "ü-nested"  # valid UTF-8, two levels down
    data = gd.SerializeToString() + bytes([0xF8, 0x07, 0x05])  # an unknown varint field 127, kept by protobuf
    graph_pb2.GraphDef.FromString(data)
    src = tmp_path / "ok.pb"
    src.write_bytes(data)
    assert scan.scan_graph_file(src) is not None
    deep = _small_graph()
    attr = deep.node[0].attr["_fn"]
    for _ in range(25):  # deeper than the scanner's bound, within protobuf's: the protobuf path decides
        attr = attr.func.attr["a"]
    attr.s = b"x"
    src.write_bytes(deep.SerializeToString())
    assert scan.scan_graph_file(src) is None
    report = prune(src, tmp_path / "deep.pb", outputs=["out"])
    assert report.nodes_after == 4


def test_scanner_false_keeps_to_the_protobuf_path(monkeypatch, tmp_path, graphs):
    """Issue 14.9: the scanner is chosen by an argument (the CLI maps GRAPHKIT_NO_SCANNER to it), not by an
    environment variable read when the module is imported."""
    used = []
    monkeypatch.setattr(core, "write_table", lambda *a, **k: used.append(True))
    prune(graphs["mlp_ref"], tmp_path / "p.pb", outputs=["output"], scanner=False)
    remap_input(graphs["mlp_ref"], tmp_path / "r.pb", outputs=["output"], placeholders={"x:0": "f:float32[?,8]"},
                scanner=False)
    assert used == [] and (tmp_path / "p.pb").exists() and (tmp_path / "r.pb").exists()
