"""``fuse`` (``--target tf`` only): ``Conv2D``/``MatMul`` + ``BiasAdd`` (+ ``Relu``/``Relu6``/``Elu``/
``LeakyRelu``) as TF's own fused ops ``_FusedConv2D``/``_FusedMatMul`` -- what Grappler's remapper makes
at run time (core/grappler/optimizers/remapper.cc), done once in the file. Only float32/float64 NHWC
(the CPU kernels' case) and only dtypes the fused op's OpDef allows (``_FusedMatMul`` takes no float64),
only where nothing else reads the parts and they are not outputs.
Other targets keep the standard ops: TFLite's and tf2onnx's converters and OpenCV read those.
"""

from __future__ import annotations

from graphkit.io import dtypes
from graphkit.io.graph import parse_ref
from graphkit.optimize.context import Context, Work, alone, attr
from graphkit.proto import node_def_pb2

ACTIVATIONS = frozenset({"Relu", "Relu6", "Elu", "LeakyRelu"})
_FUSABLE = {"Conv2D": "_FusedConv2D", "MatMul": "_FusedMatMul"}
_CONV_ATTRS = ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations", "use_cudnn_on_gpu")
_MATMUL_ATTRS = ("T", "transpose_a", "transpose_b")


def fuse_in_place(work: Work, ctx: Context) -> list[str]:
    if ctx.target != "tf" or not work.has_ops(_FUSABLE):
        return []
    index = work.index
    protected = set(ctx.outputs)
    op_defs = work.op_defs()
    allowed = {fused: {t for a in op_def.attr if a.name == "T" for t in a.allowed_values.list.type}
               for fused in _FUSABLE.values() if (op_def := op_defs.get(fused)) is not None}
    gone: set[str] = set()
    changes = []

    def only_reader(name: str) -> node_def_pb2.NodeDef | None:
        readers = index.consumers.get(name, [])
        if name in protected or len(readers) != 1 or index.control_consumers.get(name):
            return None
        return index.nodes[readers[0][0]]

    for name in index.of_ops(_FUSABLE):
        if name in gone:
            continue
        node = index.nodes[name]
        dtype = dtypes.base(attr(node, "T").type)
        if dtype not in (dtypes.DT_FLOAT, dtypes.DT_DOUBLE) or dtype not in allowed.get(_FUSABLE[node.op], ()):
            continue  # (_FusedMatMul takes no float64)
        if node.op == "Conv2D" and attr(node, "data_format").s not in (b"", b"NHWC"):
            continue
        bias = only_reader(node.name)
        if bias is None or bias.op != "BiasAdd" or parse_ref(bias.input[0]).node != node.name \
                or attr(bias, "data_format").s not in (b"", b"NHWC"):
            continue
        chain, last = [node.name, bias.name], bias
        activation = only_reader(bias.name)
        if activation is not None and activation.op in ACTIVATIONS:
            chain.append(activation.name)
            last = activation
        fused = node_def_pb2.NodeDef(name=last.name, op=_FUSABLE[node.op], device=node.device,
                                     input=[node.input[0], node.input[1], bias.input[1]])
        fused.input.extend(sorted({i for n in chain for i in index.nodes[n].input if i.startswith("^")}))
        for key in _CONV_ATTRS if node.op == "Conv2D" else _MATMUL_ATTRS:
            if key in node.attr:
                fused.attr[key].CopyFrom(node.attr[key])
        fused.attr["fused_ops"].list.s.extend([b"BiasAdd"] + ([last.op.encode()] if last is not bias else []))
        fused.attr["num_args"].i = 1
        fused.attr["TArgs"].list.type.append(attr(node, "T").type)
        fused.attr["epsilon"].f = 0.0001
        fused.attr["leakyrelu_alpha"].f = attr(last, "alpha").f if last.op == "LeakyRelu" else 0.2
        work.replace(fused)
        gone.update(n for n in chain if n != last.name)
        changes.append(f"{' + '.join(chain)} -> {fused.op} {last.name}")
    work.remove(gone)
    return changes


fuse = alone(fuse_in_place)
