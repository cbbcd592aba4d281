"""graphkit diff: what changed between two graphs or two checkpoints."""

from __future__ import annotations

import json

import numpy as np
from conftest import CAFFE_NET, FIXTURES, caffe_model, fixture_checkpoint

from graphkit.cli import cli
from graphkit.diff import diff
from graphkit.io import Graph, load, open_checkpoint, save_graph
from graphkit.io.bundle import BundleTensor, copied, write_bundle
from graphkit.io.tensors import from_numpy


def test_a_graph_that_grew_in_the_training_loop_says_what_was_added(tf, tmp_path, runner):
    """The field's case: ops made inside the loop (a tf.assign and a summary per step) grow the graph.
    Two meta graphs of one run: diff names what was added, by scope, and says how to stop it."""
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        w = v1.get_variable("w", shape=[3])
        v1.train.export_meta_graph(str(tmp_path / "step-1.meta"), graph=graph)
        for step in range(2):  # the bug: new ops every step
            with tf.name_scope("loop"):
                v1.assign(w, w * 0.5)
                v1.summary.scalar(f"norm_{step}", tf.norm(w))
        v1.train.export_meta_graph(str(tmp_path / "step-3.meta"), graph=graph)
    report = diff(tmp_path / "step-1.meta", tmp_path / "step-3.meta")
    assert not report.equal and not report.removed and report.added
    assert all(n.startswith("loop") for n in report.added)  # loop/ and loop_1/, one per step
    assert [line.split(":")[0] for line in report.scopes] == ["loop/", "loop_1/"]
    assert sum(int(line.split(": ")[1].split()[0]) for line in report.scopes) == len(report.added)
    result = runner.invoke(cli, ["diff", str(tmp_path / "step-1.meta"), str(tmp_path / "step-3.meta")])
    assert result.exit_code == 1 and "graph.finalize()" in result.output


def test_equal_models_exit_0_whatever_their_format(runner):
    result = runner.invoke(cli, ["diff", str(FIXTURES / "frozen" / "sigmoid.pb"),
                                 str(FIXTURES / "frozen" / "sigmoid.pbtxt")])
    assert result.exit_code == 0 and "are the same" in result.output


def test_changed_nodes_and_constants(tmp_path):
    gd = load(FIXTURES / "frozen" / "sigmoid.pb").graph.graph_def
    w = next(n for n in gd.node if n.name == "w")
    value = np.frombuffer(w.attr["value"].tensor.tensor_content, np.float32).reshape(3, 2).copy()
    value[1, 1] += 0.25
    w.attr["value"].tensor.CopyFrom(from_numpy(value))
    next(n for n in gd.node if n.name == "y").op = "Tanh"
    gd.node.add(name="extra/id", op="Identity", input=["y"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "b.pb")
    report = diff(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "b.pb")
    assert report.added == ["extra/id"] and not report.removed
    assert [(c.name, c.changed) for c in report.changed] == [("y", ["op"])]
    (const,) = report.constants
    assert const.name == "w" and const.what == "value" and abs(const.max_abs - 0.25) < 1e-6


def test_checkpoints_which_tensors_moved_most(tmp_path, runner):
    src = open_checkpoint(fixture_checkpoint("mlp_ref"))
    tensors = [copied(src, t.name) for t in src.tensors() if t.name != "dense2/bias"]
    moved = src.read("dense1/bias") + 2.0
    tensors = [t if t.name != "dense1/bias" else BundleTensor.of("dense1/bias", moved)
               for t in tensors]
    tensors.append(BundleTensor.of("extra", np.ones(1, np.float32)))
    write_bundle(tmp_path / "b", tensors)
    report = diff(fixture_checkpoint("mlp_ref").parent / "model.ckpt-3.index", tmp_path / "b")
    assert report.tensors_removed == ["dense2/bias"] and report.tensors_added == ["extra"]
    assert [(t.name, t.what) for t in report.tensors] == [("dense1/bias", "value")]
    assert abs(report.tensors[0].max_abs - 2.0) < 1e-5  # float32 arithmetic
    result = runner.invoke(cli, ["diff", str(fixture_checkpoint("mlp_ref")), str(tmp_path / "b"), "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["tensors"][0]["name"] == "dense1/bias"


def test_an_unreadable_side_is_one_error_line(runner, tmp_path):
    (tmp_path / "bad.pb").write_bytes(b"\x0a\xff")
    result = runner.invoke(cli, ["diff", str(FIXTURES / "frozen" / "sigmoid.pb"), str(tmp_path / "bad.pb")])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1 and "bad.pb" in result.stderr


def test_renamed_nodes_are_found_and_their_consumers_are_unchanged(tmp_path):
    """A node renamed (same op, attrs and inputs) is one rename, not a removal plus an addition; the
    nodes that read it are not 'changed' for it. A whole graph under a new prefix: every node renamed."""
    gd = load(FIXTURES / "frozen" / "sigmoid.pb").graph.graph_def
    for node in gd.node:
        node.input[:] = ["weights" if i == "w" else i for i in node.input]
        if node.name == "w":
            node.name = "weights"
    save_graph(Graph(gd), tmp_path / "b.pb")
    report = diff(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "b.pb")
    assert [(r.a, r.b, r.op) for r in report.renamed] == [("w", "weights", "Const")]
    assert not report.added and not report.removed and not report.changed and not report.equal
    from graphkit.surgery import rename

    rename(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "net.pb", add_prefix="net/")
    whole = diff(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "net.pb")
    names = [n.name for n in gd.node]
    assert len(whole.renamed) == len(names) and all(r.b == "net/" + r.a for r in whole.renamed)
    assert not whole.added and not whole.removed and whole.scopes == [f"net/: {len(names)} renamed"]


def test_the_scanned_and_parsed_paths_agree(tmp_path):
    """Binary GraphDefs are compared from the scanner's view of the files (equal bytes skip parsing);
    the protobuf path gives the same report."""
    gd = load(FIXTURES / "frozen" / "sigmoid.pb").graph.graph_def
    next(n for n in gd.node if n.name == "y").op = "Tanh"
    gd.node.add(name="extra/id", op="Identity", input=["y"]).attr["T"].type = 1
    save_graph(Graph(gd), tmp_path / "b.pb")
    fast = diff(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "b.pb")
    slow = diff(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "b.pb", scanner=False)
    assert fast == slow and fast.changed and fast.added == ["extra/id"]


def test_function_library_and_signature_changes(tmp_path):
    """TF2: a function of the library changed, one added; a signature's input shape and an output
    changed, a signature added -- each named."""
    import shutil

    from graphkit.proto import saved_model_pb2

    copy = tmp_path / "sm"
    shutil.copytree(FIXTURES / "tf2_module", copy)
    sm = saved_model_pb2.SavedModel.FromString((copy / "saved_model.pb").read_bytes())
    meta = sm.meta_graphs[0]
    library = meta.graph_def.library
    changed = library.function[0]
    changed.node_def.add(name="spare", op="NoOp")
    extra = library.function.add()
    extra.CopyFrom(changed)
    extra.signature.name = "spare_function"
    sig = meta.signature_def["serving_default"]
    first = sorted(sig.inputs)[0]
    sig.inputs[first].tensor_shape.dim[0].size = 7
    out = sorted(sig.outputs)[0]
    sig.outputs[out].name = "elsewhere:0"
    meta.signature_def["second"].CopyFrom(sig)
    (copy / "saved_model.pb").write_bytes(sm.SerializeToString())
    report = diff(FIXTURES / "tf2_module", copy)
    assert report.functions_added == ["spare_function"] and report.functions_changed == [changed.signature.name]
    assert report.signatures_added == ["second"] and not report.signatures_removed
    parts = {c.part: (c.a, c.b) for c in report.signatures_changed}
    assert set(parts) == {f"input {first}", f"output {out}"}
    assert parts[f"input {first}"][1].split()[1].startswith("float32[7") or "[7" in parts[f"input {first}"][1]
    assert parts[f"output {out}"][1].startswith("elsewhere:0 ")


def _caffe(folder, text, seed, bump=0.0):
    """A deploy net and its caffemodel; ``bump`` moves the first bias of fc."""
    from graphkit.proto import caffe_pb2

    folder.mkdir()
    (folder / "n.prototxt").write_text(text)
    net = caffe_pb2.NetParameter.FromString(caffe_model(text, np.random.default_rng(seed)))
    fc = next(layer for layer in net.layer if layer.name == "fc")
    fc.blobs[1].data[0] += bump
    (folder / "n.caffemodel").write_bytes(net.SerializeToString())
    return folder / "n.prototxt"


def test_caffe_nets_compare_layer_by_layer(tmp_path, runner):
    """Two Caffe deploy nets: a layer's params changed, a layer added, a blob moved (from the caffemodels
    beside the prototxts)."""
    a = _caffe(tmp_path / "a", CAFFE_NET, 1)
    b_text = CAFFE_NET.replace("pool: MAX", "pool: AVE") + (
        'layer { name: "extra" type: "Softmax" bottom: "prob" top: "extra" }\n')
    b = _caffe(tmp_path / "b", b_text, 1, bump=0.5)
    report = diff(a, b)
    assert report.kind == "caffe" and report.added == ["extra"] and not report.removed
    assert [(c.name, c.changed) for c in report.changed] == [("pool", ["params"])]
    assert [(c.name, round(c.max_abs, 5)) for c in report.constants] == [("fc/1", 0.5)]
    assert diff(a, a).equal
    result = runner.invoke(cli, ["diff", str(a), str(FIXTURES / "frozen" / "sigmoid.pb")])
    assert result.exit_code == 1 and "compare like with like" in result.stderr
