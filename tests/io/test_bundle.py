"""The TF-free checkpoint writer (graphkit.io.bundle) against TensorFlow's own reader: every fixture
checkpoint rewritten tensor by tensor reads back in TF bit-identical, under the same or new names."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, MANIFEST, fixture_checkpoint

from graphkit.errors import GraphkitError
from graphkit.io import open_checkpoint
from graphkit.io.bundle import BundleTensor, copied, table_bytes, write_bundle
from graphkit.io.sstable import Table

CHECKPOINTS = [name for name in MANIFEST if MANIFEST[name].get("checkpoint")]


def _sources():
    for name in CHECKPOINTS:
        yield name, fixture_checkpoint(name)
    for sm in ("tf2_module", "keras_cnn", "saved_model_tf1"):
        yield sm, FIXTURES / sm / "variables" / "variables"


@pytest.mark.parametrize("name, prefix", list(_sources()), ids=[n for n, _ in _sources()])
def test_every_fixture_checkpoint_round_trips_through_tf(tf, tmp_path, name, prefix):
    src = open_checkpoint(prefix)
    whole = [t.name for t in src.tensors() if not t.partitioned]
    if not whole:
        pytest.skip(f"{name}: only partitioned tensors (not written yet)")
    out = tmp_path / "ckpt"
    files = write_bundle(out, [copied(src, n) for n in whole], inputs=src.files)
    assert [f.name for f in files] == ["ckpt.index", "ckpt.data-00000-of-00001"]
    reader = tf.train.load_checkpoint(str(out))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(whole)
    for key in whole:
        ours, theirs = reader.get_tensor(key), src.read(key)
        if isinstance(ours, bytes):  # TF's reader gives a scalar string as bytes
            ours = np.asarray(ours, dtype=object)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, key
        if ours.dtype == object:
            assert ours.tolist() == theirs.tolist(), key
        else:
            assert ours.tobytes() == theirs.tobytes(), key  # bit-identical
    assert sorted(t.name for t in open_checkpoint(out).tensors()) == sorted(whole)  # and graphkit reads it


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
    raw[src.stored("dense1/weights")[1].offset + 3] ^= 0x10
    data.write_bytes(bytes(raw))
    out = tmp_path / "out" / "ckpt"
    out.parent.mkdir()
    with pytest.raises(GraphkitError, match="CRC mismatch in tensor 'dense1/weights'.*nothing was written"):
        write_bundle(out, [copied(src, t.name) for t in src.tensors()])
    with pytest.raises(GraphkitError, match="two tensors would be named 'x'"):
        write_bundle(out, [BundleTensor("x", 1, (), b"\0" * 4), BundleTensor("x", 1, (), b"\0" * 4)])
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
