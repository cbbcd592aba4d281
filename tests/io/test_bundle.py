"""The TF-free checkpoint writer (graphkit.io.bundle) against TensorFlow's own reader: every fixture
checkpoint rewritten tensor by tensor reads back in TF bit-identical, under the same or new names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, MANIFEST, SHARED, fixture_checkpoint

from graphkit.errors import GraphkitError
from graphkit.io import open_checkpoint
from graphkit.io.bundle import BundleTensor, copied, table_bytes, write_bundle
from graphkit.io.sstable import Table

CHECKPOINTS = [name for name in MANIFEST if MANIFEST[name].get("checkpoint")]
SHARED_CHECKPOINTS = ["tf2onnx_models/regression/checkpoint/model",
                      "tf2onnx_models/regression/saved_model/variables/variables",
                      "tfserving/half_plus_two_tf1_checkpoint/00000123/export",
                      "tfserving/bad_half_plus_two_v1_checkpoint/00000123/export",  # V1: values re-encoded
                      "tfserving/saved_model_half_plus_two_tf2_cpu/00000123/variables/variables",
                      "tfserving/saved_model_half_plus_three/00000123/variables/variables",
                      "tfserving/saved_model_counter/00000123/variables/variables",
                      "tfserving/saved_model_half_plus_two_cpu/00000123/variables/variables"]


def _sources():
    for name in CHECKPOINTS:
        yield name, fixture_checkpoint(name)
    for sm in ("tf2_module", "keras_cnn", "saved_model_tf1", "keras2_slots", "keras_gru", "tf2_module_state"):
        yield sm, FIXTURES / sm / "variables" / "variables"
    for rel in SHARED_CHECKPOINTS:
        yield rel.split("/")[1], SHARED / rel


@pytest.mark.parametrize("name, prefix", list(_sources()), ids=[n for n, _ in _sources()])
def test_every_checkpoint_round_trips_through_tf(tf, tmp_path, name, prefix):
    """Fixture and shared checkpoints (partitioned variables from two shards, strings, every dtype, a V1
    checkpoint) rewritten whole: TF's reader gives every tensor bit-identical, and a partitioned one keeps
    its slices."""
    if not Path(f"{prefix}.index").exists() and not Path(prefix).exists():
        pytest.skip(f"real third-party models not available ({prefix} is absent)")
    src = open_checkpoint(prefix)
    names = [t.name for t in src.tensors()]
    out = tmp_path / "ckpt"
    files = write_bundle(out, [copied(src, n) for n in names], inputs=src.files)
    assert [f.name for f in files] == ["ckpt.index", "ckpt.data-00000-of-00001"]
    reader = tf.train.load_checkpoint(str(out))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(names)
    again = open_checkpoint(out)
    for key in names:
        assert again.info(key).partitioned == (src.info(key).partitioned and src.version == 2), key
        if src.version == 2 and not src.info(key).partitioned:  # the stored bytes themselves, copied
            (a,), (b,) = src.stored(key), again.stored(key)
            assert a.where.read() == b.where.read() and a.crc32c == b.crc32c, key
        if src.info(key).dtype == 21:  # DT_VARIANT: opaque, compared as stored bytes above
            continue
        ours, theirs = reader.get_tensor(key), src.read(key)
        if isinstance(ours, bytes):  # TF's reader gives a scalar string as bytes
            ours = np.asarray(ours, dtype=object)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, key
        if ours.dtype == object:
            assert ours.tolist() == theirs.tolist(), key
        else:
            assert ours.tobytes() == theirs.tobytes(), key  # bit-identical
    assert sorted(t.name for t in again.tensors()) == sorted(names)  # and graphkit reads it


def test_partitioned_variables_restore_into_a_partitioned_graph(tf, tmp_path):
    """The 3-way partitioned embedding (and its Adam slots) from two data shards, renamed and written to
    one shard, restores by slices into a TF1 graph partitioned the same way."""
    src = open_checkpoint(fixture_checkpoint("resource_sharded"))
    write_bundle(tmp_path / "p", [copied(src, n, "net/" + n) for n in ("emb/table", "proj/w")])
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        emb = v1.get_variable("net/emb/table", [10, 3], partitioner=v1.fixed_size_partitioner(3))
        w = v1.get_variable("net/proj/w", [3, 2])
        with v1.Session() as sess:
            v1.train.Saver([emb, w]).restore(sess, str(tmp_path / "p"))
            got = sess.run(tf.concat(list(emb), 0))
    np.testing.assert_array_equal(got, src.read("emb/table"))


def test_strings_are_encoded_with_tfs_crc_rule(tf, tmp_path):
    """New string values (empty, long, non-UTF-8) get TF's layout and checksum: TF reads them back."""
    values = np.array([[b"", b"\xff\x00bytes"], [b"x" * 300, "unicode \u00e9".encode()]], dtype=object)
    write_bundle(tmp_path / "s", [BundleTensor.of("s", values)])
    assert tf.train.load_checkpoint(str(tmp_path / "s")).get_tensor("s").tolist() == values.tolist()


def test_renamed_subset_restores_with_tf1_restore_v2(tf, tmp_path):
    """The seed's case: a subset of the variables under a new scope, restored by TF's RestoreV2 op."""
    src = open_checkpoint(fixture_checkpoint("mlp_ref"))
    keep = [t.name for t in src.tensors() if t.name.startswith("dense1/") and "Momentum" not in t.name]
    write_bundle(tmp_path / "sub", [copied(src, n, "net/" + n) for n in keep])
    names = ["net/" + n for n in keep]
    dtypes = [tf.as_dtype(src.info(n).dtype) for n in keep]
    values = tf.raw_ops.RestoreV2(prefix=str(tmp_path / "sub"), tensor_names=names, shape_and_slices=[""] * len(names),
                                  dtypes=dtypes)
    for n, v in zip(keep, values, strict=True):
        np.testing.assert_array_equal(v.numpy(), src.read(n))


def test_a_table_of_many_blocks_reads_back(tmp_path):
    """Entries past one 256 KiB block: several data blocks, the index block, prefix compression."""
    items = sorted((f"scope/{i:06d}/kernel".encode(), bytes([i % 251]) * (i % 700)) for i in range(3000))
    path = tmp_path / "t.index"
    path.write_bytes(table_bytes(items))
    assert list(Table(path).items()) == items


def test_damaged_sources_and_bad_requests_write_nothing(tmp_path):
    import shutil

    for p in fixture_checkpoint("mlp_ref").parent.iterdir():
        shutil.copy(p, tmp_path / p.name)
    prefix = tmp_path / fixture_checkpoint("mlp_ref").name
    src = open_checkpoint(prefix, verify=False)
    data = tmp_path / f"{prefix.name}.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[src.stored("dense1/weights")[0].where.offset + 3] ^= 0x10
    data.write_bytes(bytes(raw))
    out = tmp_path / "out" / "ckpt"
    out.parent.mkdir()
    with pytest.raises(GraphkitError, match="CRC mismatch in tensor 'dense1/weights'.*nothing was written"):
        write_bundle(out, [copied(src, t.name) for t in src.tensors()])
    with pytest.raises(GraphkitError, match="two tensors would be named 'x'"):
        zero = np.zeros((), np.float32)
        write_bundle(out, [BundleTensor.of("x", zero)] * 2)
    with pytest.raises(GraphkitError, match="overwrite an input"):
        write_bundle(prefix, [copied(src, "counts")], inputs=src.files)
    assert not list(out.parent.iterdir())


def test_an_object_based_checkpoint_restores_in_tf2(tf, tmp_path):
    """A TF2 SavedModel whose variables/ graphkit rewrote loads with tf.saved_model.load (object-based
    restore through _CHECKPOINTABLE_OBJECT_GRAPH) and computes what the original computes."""
    import shutil

    copy = tmp_path / "sm"
    shutil.copytree(FIXTURES / "tf2_module", copy)
    src = open_checkpoint(FIXTURES / "tf2_module" / "variables" / "variables")
    for f in (copy / "variables").iterdir():
        f.unlink()
    write_bundle(copy / "variables" / "variables", [copied(src, t.name) for t in src.tensors()], inputs=src.files)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    ids = np.array([0, 1], np.int32)
    ours = tf.saved_model.load(str(copy)).signatures["serving_default"](x=x, ids=ids)
    theirs = tf.saved_model.load(str(FIXTURES / "tf2_module")).signatures["serving_default"](x=x, ids=ids)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy())
