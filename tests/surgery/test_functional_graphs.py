"""Surgery on graphs that keep functions: frozen TF2 SavedModels (If/While bodies left functional) and
frozen control-flow-v2 TF1 graphs. The result must still import and compute the same in TF."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint, run_graph

from graphkit.freeze import freeze
from graphkit.io import load, validate
from graphkit.surgery import prune, remap_input, rename, set_batch

RNG = np.random.RandomState(11)
IDS = np.array([3, 0, 7], np.int32)
X = RNG.randn(3, 4).astype(np.float32)


@pytest.fixture(scope="module")
def frozen_module(tmp_path_factory):
    out = tmp_path_factory.mktemp("frozen") / "module.pb"
    freeze(FIXTURES / "tf2_module", out)
    return out


def test_prune_to_one_output_keeps_the_loop_bodies(tf, tmp_path, frozen_module):
    out = tmp_path / "p.pb"
    report = prune(frozen_module, out, outputs=["y"])
    assert report.outputs == ["y"]
    gd = load(out).graph.graph_def
    assert validate(gd) == [] and {f.signature.name for f in gd.library.function}
    want = run_graph(tf, frozen_module, ["y"], {"ids:0": IDS, "x:0": X})
    got = run_graph(tf, out, ["y"], {"ids:0": IDS, "x:0": X})
    np.testing.assert_array_equal(got[0], want[0])


def test_remap_an_input_that_feeds_a_while_loop(tf, tmp_path, frozen_module):
    out = tmp_path / "r.pb"
    remap_input(frozen_module, out, placeholders={"x": "features:float32[?,4]"})
    want = run_graph(tf, frozen_module, ["e", "y"], {"ids:0": IDS, "x:0": X})
    got = run_graph(tf, out, ["e", "y"], {"ids:0": IDS, "features:0": X})
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rename_with_a_prefix_leaves_function_bodies_consistent(tf, tmp_path, frozen_module):
    out = tmp_path / "n.pb"
    rename(frozen_module, out, add_prefix="net/")
    gd = load(out).graph.graph_def
    loops = [n for n in gd.node if n.op == "While"]
    assert loops and all(n.name.startswith("net/") for n in gd.node)
    assert {n.attr["body"].func.name for n in loops} <= {f.signature.name for f in gd.library.function}
    want = run_graph(tf, frozen_module, ["y"], {"ids:0": IDS, "x:0": X})
    got = run_graph(tf, out, ["net/y"], {"net/ids:0": IDS, "net/x:0": X})
    np.testing.assert_array_equal(got[0], want[0])


def test_set_batch_on_a_frozen_keras_lstm(tf, tmp_path):
    frozen = tmp_path / "lstm.pb"
    freeze(FIXTURES / "keras_lstm", frozen)
    out = tmp_path / "b.pb"
    set_batch(frozen, out, size=2)
    tokens = RNG.randint(0, 20, (2, 7)).astype(np.int32)
    want = run_graph(tf, frozen, ["output_0"], {"tokens:0": tokens})
    got = run_graph(tf, out, ["output_0"], {"tokens:0": tokens})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    placeholder = next(n for n in load(out).graph.graph_def.node if n.name == "tokens")
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [2, 7]


def test_prune_inside_a_frozen_cfv2_graph(tf, tmp_path):
    frozen = tmp_path / "cond.pb"
    freeze(fixture_checkpoint("cfv2_var_in_cond"), frozen, outputs=["output", "shape"])
    out = tmp_path / "p.pb"
    prune(frozen, out, outputs=["shape"])
    gd = load(out).graph.graph_def
    assert {n.name for n in gd.node} >= {"shape", "shape_cond"} and "output" not in {n.name for n in gd.node}
    assert "x" not in {n.name for n in gd.node}  # the shape branch never reads x
    got = run_graph(tf, out, ["shape"], {})
    np.testing.assert_array_equal(got[0], [3, 5])
