"""graphkit edit-checkpoint: a subset of a checkpoint under other names, restored by TF's own Saver."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, fixture_checkpoint

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
    with pytest.raises(GraphkitError, match="--replace on a TF2 object-based checkpoint"):
        edit_checkpoint(fixture_checkpoint("tf2_checkpoint"), tmp_path / "a", replace=[("w", "v")])
    with pytest.raises(GraphkitError, match="no object 'nope'"):
        edit_checkpoint(fixture_checkpoint("tf2_checkpoint"), tmp_path / "a", strip_prefix="nope/")
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


# ---- TF2 object-based checkpoints: the object graph follows the keys --------------------------------------

def _keras_model(keras, seed: int):
    import tensorflow as tf

    tf.random.set_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="d1"), keras.layers.Dense(2, name="d2")])


def _model_weights(original, report):
    """The source's values of the model's four variables, by the order TF lists them."""
    keys = sorted(k for k in report.kept if "_trainable_variables" in k)
    return [original.read(k) for k in keys]


def test_tf2_strip_optimizer_restores_into_a_model_alone(tf, tmp_path):
    """A Keras 3 model + Adam training checkpoint (no slot references: Keras 3 tracks its state as
    children) without the optimizer: the object graph loses the optimizer's objects, the model's
    variables get the keys TF would give them, and tf.train.Checkpoint(model=...) restores everything
    the checkpoint holds (assert_consumed), values equal."""
    keras = pytest.importorskip("keras")
    src = fixture_checkpoint("tf2_train_checkpoint")
    original = open_checkpoint(src)
    report = edit_checkpoint(src, tmp_path / "slim", strip_optimizer=True)
    assert report.kind == "tf2" and len(report.optimizer) == 10
    assert all(k.startswith("optimizer/") for k in report.optimizer)
    assert sorted(report.renamed.values()) == [f"model/_functional/_operations/{i}/{v}/.ATTRIBUTES/VARIABLE_VALUE"
                                               for i in (1, 2) for v in ("_kernel", "bias")]
    model = _keras_model(keras, 99)
    tf.train.Checkpoint(model=model).restore(str(tmp_path / "slim")).assert_consumed()
    for got, want in zip(model.weights, _model_weights(original, report), strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_tf2_prefixes_move_objects(tf, tmp_path):
    """--strip-prefix model/ makes the model the root; --add-prefix net/ puts the root under an object
    'net': both restore in TF into the matching object structure."""
    keras = pytest.importorskip("keras")
    src = fixture_checkpoint("tf2_train_checkpoint")
    original = open_checkpoint(src)
    with pytest.raises(GraphkitError, match="no longer be reachable"):  # the optimizer is outside model/
        edit_checkpoint(src, tmp_path / "x", strip_prefix="model/")
    root = edit_checkpoint(src, tmp_path / "root", strip_optimizer=True, drop=["save_counter/*"],
                           strip_prefix="model/")
    assert all(k.startswith("_functional/") for k in root.renamed.values())
    model = _keras_model(keras, 98)
    # (the Checkpoint's own save_counter, dropped here, is the one Python object left unmatched)
    tf.train.Checkpoint(_functional=model._functional).restore(str(tmp_path / "root")).assert_nontrivial_match()
    for got, want in zip(model.weights, _model_weights(original, root), strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    under = edit_checkpoint(src, tmp_path / "net", add_prefix="net/")
    assert all(k.startswith("net/") for k in under.renamed.values()) and len(under.renamed) == 15
    model, optimizer = _keras_model(keras, 97), keras.optimizers.Adam(0.01)
    optimizer.build(model.trainable_variables)
    inner = tf.train.Checkpoint(model=model, optimizer=optimizer)
    tf.train.Checkpoint(net=inner).restore(str(tmp_path / "net")).assert_nontrivial_match()  # (the outer
    # Checkpoint's own save_counter is new: the only unmatched object)
    assert inner.save_counter.numpy() == 1
    np.testing.assert_array_equal(optimizer.iterations.numpy(), 1)
    for got, want in zip(model.weights, _model_weights(original, under), strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_tf2_slot_references_leave_with_the_optimizer(tf, tmp_path):
    """tf.keras's optimizer (a SavedModel's variables/) owns slot variables through slot_variables
    references: --strip-optimizer drops them, the optimizer and its hyper-parameters; what remains is a
    consistent object graph (every attribute's key is in the checkpoint and back), read by TF."""
    from graphkit.io.objects import optimizer_nodes

    src = FIXTURES / "keras2_slots" / "variables" / "variables"
    before = open_checkpoint(src).object_graph()
    assert optimizer_nodes(before) and any(n.slot_variables for n in before.nodes)
    report = edit_checkpoint(src, tmp_path / "inf", strip_optimizer=True)
    assert any("OPTIMIZER_SLOT" in k for k in report.optimizer) and any("learning_rate" in k for k in report.optimizer)
    assert not any("OPTIMIZER_SLOT" in k or k.startswith("optimizer/") for k in report.kept)
    after = open_checkpoint(tmp_path / "inf")
    graph = after.object_graph()
    assert not any(n.slot_variables for n in graph.nodes) and not optimizer_nodes(graph)
    attribute_keys = {a.checkpoint_key for n in graph.nodes for a in n.attributes}
    reader = tf.train.load_checkpoint(str(tmp_path / "inf"))
    assert attribute_keys == set(reader.get_variable_to_shape_map()) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert all(n.has_checkpoint_values.value == bool(n.attributes or n.children) or not n.attributes
               for n in graph.nodes)


def test_tf2_dropped_key_leaves_its_object_unrestored(tf, tmp_path):
    """--drop on a TF2 checkpoint removes the attribute from its object: the variable keeps its own
    value on restore, the others are restored."""
    src = fixture_checkpoint("tf2_checkpoint")
    edit_checkpoint(src, tmp_path / "d", drop=["model/b/*"])
    model = tf.Module()
    model.w = tf.Variable(tf.zeros([3, 3]))
    model.b = tf.Variable(tf.fill([3], 5.0))
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(model=model, step=step).restore(str(tmp_path / "d")).assert_nontrivial_match()
    assert step.numpy() == 7
    np.testing.assert_array_equal(model.w.numpy(), open_checkpoint(src).read("model/w/.ATTRIBUTES/VARIABLE_VALUE"))
    np.testing.assert_array_equal(model.b.numpy(), np.full([3], 5.0, np.float32))


# ---- cast, merge --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_cast_rounds_floating_tensors_as_tf_does(tf, tmp_path, target):
    """Floating tensors (the partitioned embedding's slices too) cast with TF's rounding; others as they
    were."""
    src = fixture_checkpoint("resource_sharded")
    original = open_checkpoint(src)
    report = edit_checkpoint(src, tmp_path / "h", cast=target)
    assert sorted(report.cast) == sorted(t.name for t in original.tensors() if t.dtype == 1)
    cast = open_checkpoint(tmp_path / "h")
    assert cast.info("emb/table").partitioned
    # TF's Python CheckpointReader does not read float16, nor RestoreV2 a partitioned float16 tensor
    # whole; RestoreV2 by slice, what a partitioned variable's restore runs, does
    dtype = getattr(tf, target)
    for key in report.cast:
        want = tf.cast(original.read(key), dtype).numpy()
        specs = [""]
        if cast.info(key).partitioned:
            dims = " ".join(str(d) for d in want.shape)
            specs = [f"{dims} " + ":".join(f"{e.start},{e.length}" for e in p.slice.extent) for p in cast.stored(key)]
        for spec in specs:
            (value,) = tf.raw_ops.RestoreV2(prefix=str(tmp_path / "h"), tensor_names=[key], shape_and_slices=[spec],
                                            dtypes=[dtype])
            index = tuple(slice(int(a), int(a) + int(b)) for a, b in (e.split(",") for e in spec.split()[-1].split(":"))
                          ) if spec else ()
            assert value.numpy().tobytes() == want[index].tobytes(), (key, spec)


def test_merge_a_pretrained_subnetwork_into_a_bigger_model(tf, tmp_path):
    """The seed's merge: dense1 of a trained MLP, put under encoder/, replaces the encoder of a bigger
    model's fresh checkpoint; the bigger model's other tensors are kept; a TF1 Saver restores the lot."""
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        w = v1.get_variable("encoder/dense1/weights", [8, 16], initializer=v1.zeros_initializer())
        b = v1.get_variable("encoder/dense1/bias", [16], initializer=v1.zeros_initializer())
        head = v1.get_variable("head/w", [16, 2], initializer=v1.ones_initializer())
        variables = [w, b, head]
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver(variables).save(sess, str(tmp_path / "big"))
            src = fixture_checkpoint("mlp_ref")
            report = edit_checkpoint(src, tmp_path / "init", keep=["dense1/*"], drop=["*/Momentum"],
                                     add_prefix="encoder/", merge=tmp_path / "big")
            assert report.merged == ["head/w"] and sorted(report.replaced) == ["encoder/dense1/bias",
                                                                             "encoder/dense1/weights"]
            sess.run(v1.global_variables_initializer())
            v1.train.Saver(variables).restore(sess, str(tmp_path / "init"))
            got_w, got_head = sess.run([w, head])
    np.testing.assert_array_equal(got_w, open_checkpoint(src).read("dense1/weights"))
    np.testing.assert_array_equal(got_head, np.ones([16, 2], np.float32))
    with pytest.raises(GraphkitError, match=r"1 merged tensors differ in shape or dtype: encoder/dense1/weights"):
        edit_checkpoint(src, tmp_path / "bad", keep=["dense2/weights"], replace=[("dense2", "dense1")],
                        add_prefix="encoder/", merge=tmp_path / "big")
    assert not (tmp_path / "bad.index").exists()


# ---- --graph: the .meta's saver made to match ----------------------------------------------------------------

def test_saver_made_after_the_optimizer_restores_once_stripped(tf, tmp_path):
    """The seed's case: a graph whose Saver was made after the optimizer lists the Adam slots, so
    restoring a checkpoint without them fails in TF. --strip-optimizer --graph writes OUT.meta whose saver
    agrees; import_meta_graph + Saver.restore then works, every value equal."""
    src = fixture_checkpoint("cfv2_bn_adam")
    meta = f"{src}.meta"
    pretrained = tmp_path / "pretrained"
    edit_checkpoint(src, pretrained, strip_optimizer=True)  # a checkpoint without the optimizer's state
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        saver = v1.train.import_meta_graph(meta)
        with pytest.raises(tf.errors.NotFoundError):
            saver.restore(sess, str(pretrained))
    report = edit_checkpoint(pretrained, tmp_path / "fixed", strip_optimizer=True, graph=meta)
    assert report.graph_out == f"{tmp_path / 'fixed'}.meta"
    assert sorted(report.saver_dropped) == sorted(open_checkpoint(src).info(k).name for k in
                                                  edit_checkpoint(src, tmp_path / "o", strip_optimizer=True).optimizer)
    original = open_checkpoint(src)
    with tf.Graph().as_default() as g, v1.Session() as sess:
        saver = v1.train.import_meta_graph(report.graph_out)
        saver.restore(sess, str(tmp_path / "fixed"))
        kernel = sess.run(g.get_tensor_by_name("conv1/kernel/Read/ReadVariableOp:0"))
        assert {v.op.name for v in v1.global_variables()}.isdisjoint(report.saver_dropped)
    np.testing.assert_array_equal(kernel, original.read("conv1/kernel"))


def test_renamed_keys_restore_through_the_retargeted_saver(tf, tmp_path):
    """--add-prefix with --graph: the saver reads the new keys into the graph's own variables (what a
    Saver with a {key: variable} dict does)."""
    src = fixture_checkpoint("cfv2_bn_adam")
    report = edit_checkpoint(src, tmp_path / "r", add_prefix="pre/", graph=f"{src}.meta")
    assert report.renamed["conv1/kernel"] == "pre/conv1/kernel" and not report.saver_dropped
    v1 = tf.compat.v1
    with tf.Graph().as_default() as g, v1.Session() as sess:
        v1.train.import_meta_graph(report.graph_out).restore(sess, str(tmp_path / "r"))
        mean = sess.run(g.get_tensor_by_name("bn1/moving_mean/Read/ReadVariableOp:0"))
    np.testing.assert_array_equal(mean, open_checkpoint(src).read("bn1/moving_mean"))
    with pytest.raises(GraphkitError, match="keys the checkpoint lacks"):
        edit_checkpoint(src, tmp_path / "s", keep=["conv1/*"], graph=f"{fixture_checkpoint('mlp_ref')}.meta")


def test_cli_new_options(runner, tmp_path):
    src = str(fixture_checkpoint("tf2_train_checkpoint"))
    result = runner.invoke(cli, ["edit-checkpoint", src, str(tmp_path / "w"), "--strip-optimizer", "--cast",
                                 "float16"])
    assert result.exit_code == 0, result.output
    assert "5 of 15 tensors" in result.stdout and "4 cast to float16" in result.stdout
    result = runner.invoke(cli, ["edit-checkpoint", src, str(tmp_path / "x"), "--cast", "int8"])
    assert result.exit_code == 2


def test_truncated_or_corrupt_sources_write_nothing(tmp_path):
    """A data shard cut short, or a merged checkpoint with a flipped bit: one error naming the file,
    nothing left behind (the corpus does the same to every command; this is edit-checkpoint's own)."""
    import shutil

    src_dir = tmp_path / "src"
    shutil.copytree(fixture_checkpoint("mlp_ref").parent, src_dir)
    prefix = src_dir / fixture_checkpoint("mlp_ref").name
    data = src_dir / f"{prefix.name}.data-00000-of-00001"
    good = data.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    data.write_bytes(good[: len(good) // 2])
    with pytest.raises(GraphkitError, match="past the end|truncated"):
        edit_checkpoint(prefix, out / "e")
    flipped = bytearray(good)
    entry = open_checkpoint(fixture_checkpoint("mlp_ref")).stored("dense2/weights")[0]
    flipped[entry.where.offset + 1] ^= 0x04
    data.write_bytes(bytes(flipped))
    with pytest.raises(GraphkitError, match="CRC mismatch in tensor 'dense2/weights'"):
        edit_checkpoint(fixture_checkpoint("mlp_ref"), out / "m", keep=["dense1/*"], merge=prefix)
    with pytest.raises(GraphkitError, match="CRC mismatch in tensor 'dense2/weights'"):
        edit_checkpoint(prefix, out / "c", cast="float16")
    assert not list(out.iterdir())


def test_a_saver_whose_lists_disagree_is_an_error(tmp_path):
    """The corpus (seed 8): a bit flip in a .meta left the saver's tensor_names one entry short of its
    dtypes, and --graph crashed in zip()."""
    from graphkit.proto import meta_graph_pb2

    src = fixture_checkpoint("cfv2_bn_adam")
    meta = meta_graph_pb2.MetaGraphDef.FromString(Path(f"{src}.meta").read_bytes())
    names = next(n for n in meta.graph_def.node if n.name == "save/RestoreV2/tensor_names")
    del names.attr["value"].tensor.string_val[-1]
    (tmp_path / "g.meta").write_bytes(meta.SerializeToString())
    with pytest.raises(GraphkitError, match="saver node 'save/RestoreV2': its tensor_names \\(15\\), "
                                            "shape_and_slices \\(16\\) and dtypes \\(16\\) disagree"):
        edit_checkpoint(src, tmp_path / "o", graph=tmp_path / "g.meta")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.meta"]
