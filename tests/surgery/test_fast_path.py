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
    gd.node.add(name="axis", op="Const").attr["dtype"].type = 3
    split = gd.node.add(name="split", op="Split", input=["axis", "x"])
    split.attr["T"].type = 1
    split.attr["num_split"].i = 2
    both = gd.node.add(name="both", op="ConcatV2", input=["split", "split:1", "axis"])
    both.attr["T"].type = 1
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
