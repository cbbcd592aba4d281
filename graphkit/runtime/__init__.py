"""The one place graphkit imports TensorFlow, tf2onnx, onnxruntime, OpenCV and the TFLite reader -- lazily,
when a graph is run: ``session.py`` (TensorFlow sessions, SavedModel signatures, OpenCV's Caffe importer),
``runner.py`` (``graphkit run``/``compare``), ``export.py`` (ONNX/TFLite), ``foreign.py`` (reading .onnx and
.tflite files), ``targets.py`` (what a target cannot run), ``difference.py`` (the one comparison, numpy only)
and ``quiet.py`` (TensorFlow's chatter, off only when asked).

Names load lazily, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "import_tf": "graphkit.runtime.session",
    "quiet_stderr": "graphkit.runtime.quiet",
    "random_feeds": "graphkit.runtime.session",
    "run_graph_def": "graphkit.runtime.session",
    "run_with_checkpoint": "graphkit.runtime.session",
    "session_run": "graphkit.runtime.session",
    "tf_reason": "graphkit.runtime.session",
    "run_signature": "graphkit.runtime.session",
    "meta_graph_bytes": "graphkit.runtime.session",
    "run_caffe_opencv": "graphkit.runtime.session",
}

if TYPE_CHECKING:
    from graphkit.runtime.quiet import quiet_stderr
    from graphkit.runtime.session import (
        import_tf,
        meta_graph_bytes,
        random_feeds,
        run_caffe_opencv,
        run_graph_def,
        run_signature,
        run_with_checkpoint,
        session_run,
        tf_reason,
    )


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphkit.runtime' has no attribute {name!r}")


__all__ = [
    "import_tf", "meta_graph_bytes", "quiet_stderr", "random_feeds", "run_caffe_opencv", "run_graph_def",
    "run_signature", "run_with_checkpoint", "session_run", "tf_reason",
]
