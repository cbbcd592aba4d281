"""The checkpoint reader against TensorFlow's RestoreV2 (bit for bit), and its failure modes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, MANIFEST, fixture_checkpoint, shared

from graphkit.errors import GraphkitError
from graphkit.io.checkpoint import open_checkpoint, slice_key
from graphkit.io.snappy import decompress

CHECKPOINTS = [n for n, m in MANIFEST.items() if "checkpoint" in m] + ["saved_model_tf1"]
SHARED_CHECKPOINTS = [
    "tf2onnx_models/regression/checkpoint/model",
    "tf2onnx_models/regression/saved_model/variables/variables",
    "tfserving/half_plus_two_tf1_checkpoint/00000123/export",
    "tfserving/bad_half_plus_two_v1_checkpoint/00000123/export",
    "tfserving/saved_model_half_plus_two_cpu/00000123/variables/variables",
    "tfserving/saved_model_half_plus_two_tf2_cpu/00000123/variables/variables",
    "tfserving/saved_model_half_plus_three/00000123/variables/variables",
    "tfserving/saved_model_counter/00000123/variables/variables",
]


def _prefix(name: str) -> Path:
    if name == "saved_model_tf1":
        return FIXTURES / name / "variables" / "variables"
    return fixture_checkpoint(name)


def assert_same_as_restore(tf, prefix: Path) -> int:
    ckpt = open_checkpoint(prefix)
    assert ckpt.tensors(), "no tensors listed"
    for info in ckpt.tensors():
        ours = ckpt.read(info.name)
        restore = tf.raw_ops.RestoreV2(prefix=str(prefix), tensor_names=[info.name], shape_and_slices=[""],
                                       dtypes=[tf.dtypes.as_dtype(info.dtype)])[0].numpy()
        ref = np.asarray(restore, dtype=object) if ours.dtype == object else np.asarray(restore)
        assert ours.shape == ref.shape, info.name
        assert ours.shape == info.shape, info.name
        if ours.dtype == object:
            assert ours.reshape(-1).tolist() == ref.reshape(-1).tolist(), info.name
        else:
            assert ours.dtype == ref.dtype, info.name
            assert ours.tobytes() == ref.tobytes(), info.name
    return len(ckpt.tensors())


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_fixture_checkpoints_bit_identical_to_restorev2(tf, name):
    assert assert_same_as_restore(tf, _prefix(name)) >= 2


@pytest.mark.parametrize("rel", SHARED_CHECKPOINTS)
def test_shared_checkpoints_bit_identical_to_restorev2(tf, rel):
    prefix = shared(rel.rsplit("/", 1)[0]) / rel.rsplit("/", 1)[1]
    assert assert_same_as_restore(tf, prefix) >= 1


def test_every_dtype_is_read():
    ckpt = open_checkpoint(fixture_checkpoint("dtypes"))
    got = {t.name: str(ckpt.read(t.name).dtype) for t in ckpt.tensors()}
    assert got["bf16"] == "bfloat16" and got["f16"] == "float16" and got["c128"] == "complex128"
    assert got["u64"] == "uint64" and got["bool"] == "bool" and got["str"] == "object"
    assert ckpt.read("scalar_str").reshape(-1)[0] == b"just one"
    assert ckpt.read("empty").shape == (0, 3)


def test_partitioned_variable_is_one_entry_with_full_shape():
    ckpt = open_checkpoint(fixture_checkpoint("resource_sharded"))
    info = ckpt.info("emb/table")
    assert info.partitioned and info.shape == (10, 3)
    assert not any(t.name.startswith("\x00") for t in ckpt.tensors())
    assert len([f for f in ckpt.files if ".data-" in f.name]) == 2


def test_slice_key_matches_formats_example():
    # docs/formats.md 1.3: the slice key of emb/table rows 0:4, columns 0:3
    assert slice_key("emb/table", [(0, 4), (0, 3)]) == b"\x00emb/table\x00\x01\x01\x02\x80\x84\x80\x83"
    assert slice_key("t", [(0, -1)]).endswith(b"\x80\x7f")  # a full extent is length -1
    # two-byte signed form: header bits kLengthToHeaderBits[2] = (0xc0, 0) xor'd into big-endian bytes
    assert slice_key("a", [(100, 1000)]).endswith(b"\xc0\x64\xc3\xe8")


def test_snappy_decompress_known_vector():
    literal = bytes([5, (5 - 1) << 2]) + b"hello"
    assert decompress(literal) == b"hello"
    # "abcabcabc": literal "abc" then a copy of 6 bytes at offset 3 (1-byte-offset form)
    data = bytes([9, (3 - 1) << 2]) + b"abc" + bytes([0x01 | ((6 - 4) << 2), 3])
    assert decompress(data) == b"abcabcabc"


def _copy_checkpoint(src_prefix: Path, dst: Path) -> Path:
    for f in src_prefix.parent.glob(src_prefix.name + ".*"):
        shutil.copy(f, dst / f.name)
    return dst / src_prefix.name


def test_corrupt_data_is_a_crc_error(tmp_path):
    prefix = _copy_checkpoint(fixture_checkpoint("mlp_ref"), tmp_path)
    data = next(tmp_path.glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    ckpt = open_checkpoint(prefix)
    entry_offset = ckpt._entry("dense1/weights").offset  # type: ignore[attr-defined]
    raw[entry_offset + 3] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(GraphkitError, match="CRC mismatch in tensor 'dense1/weights'"):
        open_checkpoint(prefix).read("dense1/weights")


def test_corrupt_index_is_a_crc_error(tmp_path):
    prefix = _copy_checkpoint(fixture_checkpoint("mlp_ref"), tmp_path)
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    raw[20] ^= 0x55
    index.write_bytes(bytes(raw))
    with pytest.raises(GraphkitError, match="CRC mismatch"):
        open_checkpoint(prefix)


def test_truncated_index_is_an_error(tmp_path):
    prefix = _copy_checkpoint(fixture_checkpoint("mlp_ref"), tmp_path)
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(GraphkitError, match="magic"):
        open_checkpoint(prefix)


def test_missing_shard_names_the_file(tmp_path):
    prefix = _copy_checkpoint(fixture_checkpoint("resource_sharded"), tmp_path)
    next(tmp_path.glob("*.data-00001-of-00002")).unlink()
    ckpt = open_checkpoint(prefix)
    assert [f.name for f in ckpt.missing_files()] == ["model.ckpt.data-00001-of-00002"]
    with pytest.raises(GraphkitError, match=r"data shard .*data-00001-of-00002 is missing"):
        for t in ckpt.tensors():
            ckpt.read(t.name)


def test_raw_is_zero_copy_view_of_the_data_file():
    ckpt = open_checkpoint(fixture_checkpoint("mlp_ref"))
    view = ckpt.raw("dense1/weights")
    assert isinstance(view, memoryview) and len(view) == 8 * 16 * 4
    assert np.frombuffer(view, np.float32).reshape(8, 16).tobytes() == ckpt.read("dense1/weights").tobytes()
    assert ckpt.raw("vocab") is None  # strings cannot be copied as raw bytes
