"""graphkit diff: what changed between two graphs or two checkpoints."""

from __future__ import annotations

import json

import numpy as np
from conftest import FIXTURES, fixture_checkpoint

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
