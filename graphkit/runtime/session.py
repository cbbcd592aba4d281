"""TensorFlow sessions: running a GraphDef, a meta graph with its checkpoint, a SavedModel signature, and
OpenCV's Caffe importer as the other runtime; TF's failures as one line. TensorFlow is imported on first use."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.loader import Model
from graphkit.io.roles import Input
from graphkit.runtime.quiet import is_quiet, quiet_stderr


def import_tf() -> Any:
    """TensorFlow, or a clear error saying which extra to install. Its start-up notes and deprecation notes
    are kept off stderr when :func:`graphkit.runtime.quiet.quiet_tensorflow` is on."""
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # TF's C++ start-up notes (absl, oneDNN) ignore TF_CPP_MIN_LOG_LEVEL: keep them off the user's stderr.
    try:
        with quiet_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise GraphkitError("this needs TensorFlow: pip install 'graphkit[tf]'") from exc
    if is_quiet():  # TF's Python deprecation notes ("Instructions for updating: ...") are about graphkit's calls
        tf.get_logger().setLevel("ERROR")
    return tf


def random_feeds(inputs: list[Input], batch: int = 1, seed: int = 0,
                 given: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """A value for every required placeholder: the given ones, else random by dtype and shape."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for item in inputs:
        name = f"{item.name}:0"
        if given and (item.name in given or name in given):
            feeds[name] = np.asarray(given.get(item.name, given.get(name)))
            continue
        if item.has_default:
            continue
        if item.shape is None:
            raise GraphkitError(f"input '{item.name}' has unknown rank; give it with --input NAME=FILE.npy")
        shape = tuple(batch if d < 0 else d for d in item.shape)
        code = dtypes.from_name(item.dtype)
        np_dtype = dtypes.to_numpy(code)
        if np_dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(np_dtype)
        elif np_dtype.kind in "iu":
            feeds[name] = rng.integers(0, 3, shape).astype(np_dtype)
        elif np_dtype.kind == "b":
            feeds[name] = rng.integers(0, 2, shape).astype(bool)
        else:
            raise GraphkitError(f"cannot make a random {item.dtype} for input '{item.name}'; give it with --input")
    return feeds


def run_graph_def(graph_def_bytes: bytes, feeds: dict[str, np.ndarray], outputs: list[str],
                  path: str | None = None, init: list[str] | None = None) -> list[np.ndarray]:
    """Run a (frozen) serialized GraphDef in a fresh TF graph. ``outputs``: node names (output 0) or
    tensor names; ``init``: ops run once first (``init_all_tables``); ``path`` names the model in errors."""
    tf = import_tf()
    gd = tf.compat.v1.GraphDef.FromString(graph_def_bytes)
    graph = tf.Graph()
    with graph.as_default():
        try:
            with quiet_stderr():
                tf.compat.v1.import_graph_def(gd, name="")
        except ValueError as exc:  # TF's import checks: types, shapes, dangling inputs
            raise GraphkitError(f"TensorFlow cannot import the graph: {str(exc).splitlines()[0]}", path) from None
        except tf.errors.OpError as exc:  # an op this TensorFlow does not register, and the like
            raise GraphkitError(f"TensorFlow cannot import the graph: {tf_reason(exc)}", path) from None
    with tf.compat.v1.Session(graph=graph) as sess:
        if init:
            sess.run(init)
        return session_run(sess, outputs, feeds, path)


def run_with_checkpoint(meta_graph_bytes: bytes, prefix: str, feeds: dict[str, np.ndarray],
                        outputs: list[str], path: str | None = None) -> list[np.ndarray]:
    """Run a MetaGraphDef with its variables restored from a checkpoint (import_meta_graph + restore)."""
    tf = import_tf()
    v1 = tf.compat.v1
    meta = v1.MetaGraphDef.FromString(meta_graph_bytes)
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        saver = v1.train.import_meta_graph(meta, clear_devices=True)
        if saver is None:
            raise GraphkitError("the graph has no saver, so its checkpoint cannot be restored", path)
        saver.restore(sess, prefix)
        return session_run(sess, outputs, feeds, path)


def session_run(sess: Any, outputs: list[str], feeds: dict[str, np.ndarray], path: str | None) -> list[np.ndarray]:
    """``sess.run`` of node (output 0) or tensor names; a TF run error becomes one line naming the model
    (TF's C++ logs of the failure, dozens of lines on stderr, are kept off: the reason is in the line)."""
    tf = import_tf()
    try:
        with quiet_stderr():
            return list(sess.run([o if ":" in o else f"{o}:0" for o in outputs], feeds))
    except tf.errors.OpError as exc:
        raise GraphkitError(f"TensorFlow could not run it: {tf_reason(exc)}", path) from None
    except (ValueError, TypeError) as exc:  # TF's feed checks: "Cannot feed value of shape (2, 5) for Tensor x:0..."
        raise GraphkitError(f"a wrong input: {str(exc).splitlines()[0]}; check --input", path) from None


def tf_reason(exc: Any) -> str:
    """TF's own reason from an OpError, in one line, with the node it failed at: its message opens with
    "Graph execution error:" and a Python stack; the reason is the last line that is neither."""
    import re

    text = str(getattr(exc, "message", "") or exc)
    lines = [line.strip() for line in text.splitlines()]
    reasons = [line for line in lines if line and not line.startswith(
        ("Graph execution error", "Detected at node", "File ", "[[", "Node:", "Traceback"))]
    reason = reasons[-1] if reasons else (lines[0] if lines else type(exc).__name__)
    node = getattr(getattr(exc, "op", None), "name", None)
    found = re.search(r"\{\{node ([^}]+)\}\}", text)
    node = node or (found.group(1) if found else None)
    return f"{reason} (at node '{node}')" if node and node not in reason else reason


def run_signature(path: str, key: str, feeds: dict[str, np.ndarray], outputs: list[str],
                  tags: list[str] | None = None) -> list[np.ndarray]:
    """A TF2 SavedModel's signature ``key`` called with ``feeds`` by input key; ``outputs`` by output key.

    The TF2 way first (``tf.saved_model.load``, holding the loaded object while the function runs: TF drops
    the variables of a signature whose object was collected). SavedModels that TF 2.21's object loader
    cannot revive (a Keras 2 optimizer's slot variables: "'_UserObject' object has no attribute
    'add_slot'"; TF-Agents' ``_DistributionTypeSpec``) are run with the TF1 loader instead, which restores
    the variables through the saver and runs the signature's tensors: the same computation."""
    tf = import_tf()
    try:
        with quiet_stderr():
            loaded = tf.saved_model.load(path, tags=tags)
    except Exception as exc:  # any revival failure: the TF1 loader needs no Python objects
        return _run_signature_v1(path, key, feeds, outputs, tags, f"{type(exc).__name__}: {exc}")
    fn = loaded.signatures[key]
    try:
        result = fn(**{k: tf.constant(v) for k, v in feeds.items()})
    except (tf.errors.OpError, TypeError, ValueError) as exc:
        raise GraphkitError(f"TensorFlow could not run signature '{key}': {str(exc).splitlines()[0]}", path) from None
    values = [result[o].numpy() for o in outputs]
    del loaded
    return values


def _run_signature_v1(path: str, key: str, feeds: dict[str, np.ndarray], outputs: list[str],
                      tags: list[str] | None, why: str) -> list[np.ndarray]:
    tf = import_tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    try:
        with graph.as_default(), v1.Session(graph=graph) as sess, quiet_stderr():
            meta = v1.saved_model.loader.load(sess, tags or ["serve"], path)
            sig = meta.signature_def[key]
            tensor_feeds = {sig.inputs[k].name: v for k, v in feeds.items()}
            return session_run(sess, [sig.outputs[o].name for o in outputs], tensor_feeds, path)
    except (tf.errors.OpError, RuntimeError, ValueError) as exc:
        raise GraphkitError(f"TensorFlow cannot load this SavedModel: tf.saved_model.load failed "
                            f"({why.splitlines()[0]}) and so did the TF1 loader ({str(exc).splitlines()[0]})",
                            path) from None


def meta_graph_bytes(model: Model) -> bytes:
    """The model's MetaGraphDef (or an empty one) holding its graph, weights included, serialized for TF."""
    from graphkit.io.save import materialize
    from graphkit.proto import meta_graph_pb2

    assert model.graph is not None
    meta = meta_graph_pb2.MetaGraphDef()
    if model.meta_graph is not None:
        meta.CopyFrom(model.meta_graph)
    meta.graph_def.CopyFrom(materialize(model.graph))
    version = meta.meta_info_def.tensorflow_version
    if version and not re.fullmatch(r"\d+(\.\d+)*([ab]|rc)?\d*(\.dev\d+)?", version):
        # TF 0.x wrote versions such as "0.12.head", which import_meta_graph's version check cannot parse
        # (packaging.version.InvalidVersion); the version is informational, the graph is what matters
        numeric = re.match(r"\d+(\.\d+)*", version)
        meta.meta_info_def.tensorflow_version = numeric.group(0) if numeric else ""
    return meta.SerializeToString()


def run_caffe_opencv(prototxt: str, caffemodel: str, x: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    """A Caffe model's blobs ``outputs`` computed by OpenCV's Caffe importer (the independent oracle).
    OpenCV names outputs by layer: each blob is read from the last layer writing it (a layer's tops in order)."""
    try:
        import cv2
    except ImportError as exc:
        raise GraphkitError("this needs OpenCV's Caffe importer: pip install 'opencv-python-headless>=4.13,<5'") \
            from exc
    from graphkit.io.caffe import read_prototxt

    spec = read_prototxt(prototxt)
    writer: dict[str, tuple[str, int]] = {}
    layers_in_order: list[Any] = [*spec.layer, *spec.layers]
    for layer in layers_in_order:
        for k, top in enumerate(layer.top):
            writer[top] = (layer.name, k)
    layers = list(dict.fromkeys(writer[o][0] for o in outputs))
    try:
        net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        net.setInput(x)
        values = dict(zip(layers, net.forwardAndRetrieve(layers), strict=True))
    except cv2.error as exc:
        raise GraphkitError(f"OpenCV could not run this model: {str(exc).strip().splitlines()[-1]}", prototxt) \
            from None
    return [np.asarray(values[writer[o][0]][writer[o][1]]) for o in outputs]
