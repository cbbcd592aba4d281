"""Exporting a frozen GraphDef to ONNX (tf2onnx, as a library) and TFLite (TF's converter). Both import
TensorFlow, so they live here, lazily."""

from __future__ import annotations

from typing import Any

from graphkit.errors import GraphkitError


class TFLiteRefused(GraphkitError):
    """The TFLite converter refused the graph; ``details`` is its full message (it lists the ops that need
    TF Select or custom ops)."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def to_onnx(graph_def_bytes: bytes, inputs: list[str], outputs: list[str], opset: int | None) -> bytes:
    """A serialized ONNX ModelProto; tensor names as in TF (``x:0``)."""
    from graphkit.runtime import import_tf

    tf = import_tf()
    try:
        import tf2onnx
    except ImportError as exc:
        raise GraphkitError("ONNX export needs tf2onnx: pip install 'graphkit[onnx]'") from exc
    from graphkit.runtime import quiet_stderr

    gd = tf.compat.v1.GraphDef.FromString(graph_def_bytes)
    try:
        with quiet_stderr():  # tf2onnx's and TF's deprecation and shape notes
            model, _ = tf2onnx.convert.from_graph_def(gd, input_names=inputs, output_names=outputs, opset=opset)
    except Exception as exc:  # tf2onnx raises plain exceptions for unsupported ops
        raise GraphkitError(f"tf2onnx could not convert the graph: {str(exc).splitlines()[0]}") from None
    data: bytes = model.SerializeToString()
    return data


def to_tflite(graph_path: str, inputs: list[str], shapes: dict[str, list[int]], outputs: list[str]) -> bytes:
    """A TFLite flatbuffer from a frozen GraphDef file (TF's v1 converter); unknown dims must be fixed."""
    from graphkit.runtime import import_tf

    tf = import_tf()
    converter: Any = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        graph_path, input_arrays=inputs, output_arrays=outputs, input_shapes=shapes)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    from graphkit.runtime import quiet_stderr

    try:
        with quiet_stderr():
            data: bytes = converter.convert()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "element_shape to be static" in str(exc):  # tensorflow#62849: a TensorList with a dynamic batch
            first += ("; TFLite's converter cannot lower a TensorList loop (an RNN) whose element shape is not "
                      "static (tensorflow#62849); convert to ONNX instead, or export the model with a fixed batch")
        raise TFLiteRefused(f"the TFLite converter refused the graph: {first}", str(exc)) from None
    return data


def run_tflite(model: bytes, feeds: dict[str, Any], outputs: list[str]) -> dict[str, Any]:
    """Run a TFLite model with TF's interpreter; inputs/outputs by TF tensor/node names."""
    from graphkit.runtime import import_tf, quiet_stderr

    tf = import_tf()
    with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." and the deprecation note
        interpreter = tf.lite.Interpreter(model_content=model)
        interpreter.allocate_tensors()
    by_name = {d["name"]: d for d in interpreter.get_input_details()}
    for name, value in feeds.items():
        detail = by_name.get(name) or by_name.get(f"{name}:0")
        if detail is None:
            raise GraphkitError(f"the TFLite model has no input '{name}' (it has {', '.join(by_name)})")
        interpreter.set_tensor(detail["index"], value)
    with quiet_stderr():
        interpreter.invoke()
    out_details = {d["name"]: d for d in interpreter.get_output_details()}
    result = {}
    for name in outputs:
        detail = out_details.get(name) or out_details.get(f"{name}:0")
        if detail is None:
            detail = list(out_details.values())[outputs.index(name)]
        result[name] = interpreter.get_tensor(detail["index"])
    return result
