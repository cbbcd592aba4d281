"""graphkit tensorboard: an event file TensorFlow's own reader accepts (CRCs checked), in a new run folder."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, fixture_checkpoint

from graphkit.board import tensorboard
from graphkit.cli import cli
from graphkit.io import load


def _events(tf, path):
    return list(tf.compat.v1.train.summary_iterator(str(path)))


def test_event_file_read_back_by_tensorflow(tf, tmp_path):
    report = tensorboard(fixture_checkpoint("mlp_ref"), tmp_path / "runs")
    events = _events(tf, report.event_file)
    assert events[0].file_version == "brain.Event:2"
    graph = tf.compat.v1.GraphDef.FromString(events[1].graph_def)
    assert {n.name for n in graph.node} == {n.name for n in load(fixture_checkpoint("mlp_ref")).graph.graph_def.node}
    again = tensorboard(fixture_checkpoint("mlp_ref"), tmp_path / "runs", run=report.run_dir.split("/")[-1])
    assert again.run_dir != report.run_dir  # never into an existing run folder


def test_large_constants_lose_their_values_not_their_shapes(tf, tmp_path):
    import numpy as np

    g = tf.Graph()
    with g.as_default():
        tf.constant(np.ones((32, 64), np.float32), name="big") + tf.constant(np.arange(64, dtype=np.float32),
                                                                               name="small")
    src = tmp_path / "g.pb"
    src.write_bytes(g.as_graph_def().SerializeToString())
    report = tensorboard(src, tmp_path / "runs", run="r")
    graph = tf.compat.v1.GraphDef.FromString(_events(tf, report.event_file)[1].graph_def)
    nodes = {n.name: n for n in graph.node}
    assert report.stripped_constants == 1
    big = nodes["big"].attr["value"].tensor
    assert not big.tensor_content and [d.size for d in big.tensor_shape.dim] == [32, 64]
    assert nodes["small"].attr["value"].tensor.tensor_content


def test_cli(runner, tmp_path):
    result = runner.invoke(cli, ["tensorboard", str(FIXTURES / "frozen" / "sigmoid.pb"), "--logdir",
                                 str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert f"view it with: tensorboard --logdir {tmp_path / 'runs'}" in result.output
    result = runner.invoke(cli, ["tensorboard", str(tmp_path / "nope.pb"), "--logdir", str(tmp_path)])
    assert result.exit_code == 1


def test_tensorboards_own_loader_reads_it(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package is the reader this checks against")
    from tensorboard.backend.event_processing import event_file_loader

    report = tensorboard(FIXTURES / "frozen" / "sigmoid.pb", tmp_path / "runs", run="r")
    events = list(event_file_loader.LegacyEventFileLoader(report.event_file).Load())
    assert events[0].file_version == "brain.Event:2"
    graphs = [e.graph_def for e in events if e.graph_def]
    assert len(graphs) == 1
    from graphkit.proto import graph_pb2

    assert graph_pb2.GraphDef.FromString(graphs[0]) == load(FIXTURES / "frozen" / "sigmoid.pb").graph.graph_def
