"""Shared test fixtures: paths, the shared real-model folder (skipped when absent), one TF per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "tf"
SHARED = Path(os.environ.get("GRAPHKIT_SHARED_MODELS", ROOT.parent / "shared" / "models"))
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())


if os.environ.get("GRAPHKIT_NO_SCANNER"):
    # CI's second pass runs the suite as on an install built without a C compiler: the compiled scanner is
    # taken away before any test is collected (library code reads no environment; the CLI maps the
    # variable to scanner=False)
    import graphkit.io.scan as _scan

    _scan._wirescan = None


def shared(rel: str) -> Path:
    """A model from ../shared/models, or skip the test with the reason."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"real third-party models not available ({path} is absent)")
    return path


def fixture_checkpoint(name: str) -> Path:
    return FIXTURES / name / MANIFEST[name]["checkpoint"]


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once per test session: the oracle."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tensorflow = pytest.importorskip("tensorflow")
    return tensorflow


@pytest.fixture
def runner():
    """click's CliRunner, stderr apart, and an exception that escapes graphkit's own error handling raised
    in the test (click would otherwise keep it in ``result.exception`` for nobody to read)."""
    from click.testing import CliRunner

    class Runner(CliRunner):
        def invoke(self, *args, catch_exceptions: bool = False, **kwargs):  # type: ignore[override]
            return super().invoke(*args, catch_exceptions=catch_exceptions, **kwargs)

    try:
        return Runner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart by default
        return Runner()


def read_graph(tf, path):
    """A GraphDef file (binary or text) parsed with TF's own proto classes."""
    gd = tf.compat.v1.GraphDef()
    path = Path(path)
    if path.suffix in (".pbtxt", ".txt"):
        from google.protobuf import text_format

        text_format.Parse(path.read_text(), gd)
    else:
        gd.ParseFromString(path.read_bytes())
    return gd


def run_graph(tf, graph_def, fetches, feed, input_map=None):
    """Import a GraphDef (TF's proto or a path) into a fresh graph, as TF users do, and run it."""
    if not hasattr(graph_def, "node"):
        graph_def = read_graph(tf, graph_def)
    graph = tf.Graph()
    with graph.as_default():
        mapped = {k: v(graph) if callable(v) else v for k, v in (input_map or {}).items()}
        tf.compat.v1.import_graph_def(graph_def, name="", input_map=mapped or None)
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run([f if ":" in f else f + ":0" for f in fetches], feed)


# A small Caffe deploy net and its blob shapes (the bad-input corpus edits it; diff compares two)
CAFFE_NET = """name: "t"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 8
input_dim: 8
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "flat" type: "Flatten" bottom: "fc" top: "flat" }
layer { name: "cat" type: "Concat" bottom: "flat" bottom: "flat" top: "cat" }
layer { name: "prob" type: "Softmax" bottom: "cat" top: "prob" }
"""
CAFFE_BLOBS = {"conv": [(4, 3, 3, 3), (4,)], "fc": [(5, 36), (5,)]}


def caffe_model(net_text: str, rng, extra_blob: bool = False) -> bytes:
    """A caffemodel for ``net_text``: CAFFE_BLOBS' shapes filled from ``rng`` (a numpy Generator)."""
    import numpy as np
    from google.protobuf import text_format

    from graphkit.proto import caffe_pb2

    net = caffe_pb2.NetParameter()
    text_format.Parse(net_text, net)
    for layer in net.layer:
        shapes = CAFFE_BLOBS.get(layer.name, []) + ([(4,)] if extra_blob and layer.name == "conv" else [])
        for shape in shapes:
            blob = layer.blobs.add()
            blob.shape.dim.extend(shape)
            blob.data.extend(rng.uniform(-1, 1, shape).astype(np.float32).ravel())
    return net.SerializeToString()


def read_idx(path):
    """An IDX array (uTensor's op tests): bytes 0-1 zero, byte 2 the dtype, byte 3 the rank, big-endian
    uint32 dims, big-endian data."""
    import struct

    import numpy as np

    data = path.read_bytes()
    kind, rank = data[2], data[3]
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[kind]
    return np.frombuffer(data[4 + 4 * rank:], dtype=dtype).reshape(dims).astype(dtype[1:])
