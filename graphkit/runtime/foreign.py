"""``inspect`` of ONNX and TFLite models: what they take and give, their ops and weights. ONNX is read with
the ``onnx`` package (the onnx extra), TFLite with TensorFlow's interpreter (the tf extra); both lazily,
here in runtime with the other heavy imports."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from graphkit.errors import GraphkitError

Json = dict[str, Any]


def describe_onnx(path: str | os.PathLike[str]) -> Json:
    """Inputs (graph inputs that are not initializers), outputs, opsets, op counts, initializer bytes."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise GraphkitError("inspecting ONNX needs the onnx package: pip install 'graphkit[onnx]'", path) from exc
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise GraphkitError(f"not a valid ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                            path) from None
    graph = model.graph
    initialized = {t.name for t in graph.initializer}

    def value_info(v: Any) -> Json:
        tensor = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "?"
        return {"name": v.name, "dtype": dtype, "shape": dims if tensor.HasField("shape") else None}

    weight_bytes = 0
    for t in graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            weight_bytes += int(next((e.value for e in t.external_data if e.key == "length"), 0) or 0)
        else:
            weight_bytes += numpy_helper.to_array(t).nbytes
    return {
        "path": os.fspath(path), "format": "onnx", "file_bytes": os.path.getsize(path),
        "producer": f"{model.producer_name} {model.producer_version}".strip(), "ir_version": model.ir_version,
        "opset": [{"domain": o.domain or "ai.onnx", "version": o.version} for o in model.opset_import],
        "node_count": len(graph.node),
        "inputs": [value_info(v) for v in graph.input if v.name not in initialized],
        "outputs": [value_info(v) for v in graph.output],
        "ops": dict(Counter(n.op_type for n in graph.node).most_common()),
        "initializers": len(graph.initializer), "weight_bytes": weight_bytes,
    }


def tflite_interpreter(path: str | os.PathLike[str]) -> Any:
    from graphkit.runtime import import_tf, quiet_stderr

    tf = import_tf()
    try:
        with quiet_stderr():
            interpreter = tf.lite.Interpreter(  # without the XNNPACK delegate, which hides ops as DELEGATE
                model_path=os.fspath(path),
                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise GraphkitError(f"TFLite cannot load it: {str(exc).splitlines()[0]}", path) from None
    return interpreter


def describe_tflite(path: str | os.PathLike[str]) -> Json:
    """Inputs, outputs, op counts and tensors (with the bytes of those holding constant data)."""
    interpreter = tflite_interpreter(path)

    def io(d: Json) -> Json:
        dims: Any = d["shape_signature"] if "shape_signature" in d else d["shape"]
        shape = [int(x) for x in dims]
        return {"name": d["name"], "dtype": d["dtype"].__name__, "shape": shape}

    tensors = interpreter.get_tensor_details()
    ops = interpreter._get_ops_details()  # the only listing of a model's ops TF's interpreter offers
    made = {int(i) for op in ops for i in list(op["outputs"])} | {d["index"] for d in interpreter.get_input_details()}
    read = {int(i) for op in ops for i in list(op["inputs"]) if int(i) >= 0}
    constant = 0
    for index in read - made:  # tensors ops read that nothing computes: the weights
        try:
            constant += int(interpreter.get_tensor(index).nbytes)
        except ValueError:
            continue
    return {
        "path": os.fspath(path), "format": "tflite", "file_bytes": os.path.getsize(path),
        "inputs": [io(d) for d in interpreter.get_input_details()],
        "outputs": [io(d) for d in interpreter.get_output_details()],
        "ops": dict(Counter(op["op_name"] for op in ops).most_common()), "node_count": len(ops),
        "tensors": len(tensors), "weight_bytes": constant,
    }
