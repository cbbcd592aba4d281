"""graphkit edit-checkpoint: a subset of a checkpoint under other names, restored by TF's own Saver."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import fixture_checkpoint

from graphkit.ckpt import edit_checkpoint
from graphkit.cli import cli
from graphkit.errors import GraphkitError
from graphkit.io import open_checkpoint


def test_a_renamed_subset_restores_with_a_tf1_saver(tf, tmp_path):
    """The seed's cases at once: only dense1's weights (no optimizer slots), under a new scope, restored by
    tf.compat.v1.train.Saver into a graph whose variables carry that scope."""
    src = fixture_checkpoint("mlp_ref")
    report = edit_checkpoint(src, tmp_path / "sub", keep=["dense1/*"], drop=["*/Momentum"], add_prefix="net/")
    assert report.kept == ["dense1/bias", "dense1/weights"] and report.tensors_before == 11
    assert report.renamed == {"dense1/bias": "net/dense1/bias", "dense1/weights": "net/dense1/weights"}
    original = open_checkpoint(src)
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        w = v1.get_variable("net/dense1/weights", shape=[8, 16])
        b = v1.get_variable("net/dense1/bias", shape=[16])
        with v1.Session() as sess:
            v1.train.Saver([w, b]).restore(sess, str(tmp_path / "sub"))
            got_w, got_b = sess.run([w, b])
    np.testing.assert_array_equal(got_w, original.read("dense1/weights"))
    np.testing.assert_array_equal(got_b, original.read("dense1/bias"))


def test_strip_and_replace_rename_every_key(tmp_path):
    report = edit_checkpoint(fixture_checkpoint("mlp_ref"), tmp_path / "r", replace=[("^dense(\\d)/", r"layer\1/")])
    names = {t.name for t in open_checkpoint(tmp_path / "r").tensors()}
    assert "layer1/weights" in names and "dense1/weights" not in names and len(names) == report.tensors_before


def test_what_cannot_be_done_is_refused_before_writing(tmp_path):
    src = fixture_checkpoint("mlp_ref")
    with pytest.raises(GraphkitError, match=r"no tensor matches 'nope/\*', 'zz'"):
        edit_checkpoint(src, tmp_path / "a", keep=["nope/*"], drop=["zz"])
    with pytest.raises(GraphkitError, match=r"two tensors would get one name: .*-> w"):
        edit_checkpoint(src, tmp_path / "a", keep=["dense*/weights"], replace=[(".*", "w")])
    with pytest.raises(GraphkitError, match="TF2 object-based checkpoint"):
        edit_checkpoint(fixture_checkpoint("tf2_checkpoint"), tmp_path / "a")
    with pytest.raises(GraphkitError, match="overwrite an input"):
        edit_checkpoint(src, src)
    with pytest.raises(GraphkitError, match="nothing left to write"):
        edit_checkpoint(src, tmp_path / "a", drop=["*"])
    assert not list(tmp_path.iterdir())


def test_cli(runner, tmp_path):
    src = str(fixture_checkpoint("mlp_ref"))
    result = runner.invoke(cli, ["edit-checkpoint", src, str(tmp_path / "s"), "--drop", "*Momentum", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tensors_after"] == 7 and all(not k.endswith("Momentum") for k in data["kept"])
    result = runner.invoke(cli, ["edit-checkpoint", src, str(tmp_path / "t"), "--replace", "bad"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["edit-checkpoint", src, str(tmp_path / "t"), "--keep", "nope"])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {src}: no tensor matches 'nope'")


@pytest.mark.parametrize("name, slot", [("cfv2_bn_adam", "Adam"), ("batch_norm", "Momentum"), ("mlp_ref", "Momentum")])
def test_strip_optimizer_leaves_what_an_inference_saver_restores(tf, tmp_path, name, slot):
    """--strip-optimizer drops the slots (<var>/Adam, /Adam_1, /Momentum), Adam's beta powers and
    global_step, found by their variable being in the checkpoint with their shape; a TF1 Saver over an
    inference graph's variables restores the rest, every value equal."""
    src = fixture_checkpoint(name)
    original = open_checkpoint(src)
    report = edit_checkpoint(src, tmp_path / "inf", strip_optimizer=True)
    assert report.optimizer and all(slot in k or k in ("beta1_power", "beta2_power", "global_step")
                                    for k in report.optimizer)
    assert not any(k.endswith(f"/{slot}") for k in report.kept)
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        variables = [v1.get_variable(k, shape=original.info(k).shape, dtype=tf.as_dtype(original.info(k).dtype))
                     for k in report.kept]
        with v1.Session() as sess:
            v1.train.Saver(variables).restore(sess, str(tmp_path / "inf"))
            values = sess.run(variables)
    for key, value in zip(report.kept, values, strict=True):
        np.testing.assert_array_equal(value, original.read(key))
    assert {t.name for t in open_checkpoint(tmp_path / "inf").tensors()} == set(report.kept)


def test_a_variable_that_only_looks_like_a_slot_stays():
    from graphkit.ckpt.edit import optimizer_state

    names = ["w", "w/Adam", "w/Adam_1", "head/Momentum", "v", "v/Momentum", "beta1_power"]
    shapes = {"w": (3,), "w/Adam": (3,), "w/Adam_1": (3,), "head/Momentum": (2,), "v": (4,), "v/Momentum": (5,),
              "beta1_power": ()}
    assert optimizer_state(names, shapes) == ["w/Adam", "w/Adam_1", "beta1_power"]  # head: no var; v: shapes differ
