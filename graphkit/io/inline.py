"""Inlining ``PartitionedCall``/``StatefulPartitionedCall`` and direct calls into a flat main graph.

What TF's Grappler function optimizer does for ``convert_variables_to_constants_v2``
(``core/common_runtime/inline_function_utils.cc``, ``InlineFunctionBody``), with deterministic names and
none of its side effects:

- one Identity per argument, ``<caller>/input/<arg>``, fed by the caller's input (and by a NoOp
  ``<caller>/input_control_node`` holding the caller's control inputs, when it has some; body nodes with
  no inputs then depend on it, as TF's frame forwarding does);
- the body's nodes copied as ``<caller>/<node>``, their ``node:out_arg:i`` references turned into flat
  ports with the op defs, ``_class`` colocations on body nodes prefixed, on arguments moved to the input
  Identity, and any other (tracing-time names that exist nowhere) dropped;
- one Identity per output, ``<caller>/output/<out_arg>``; the caller's consumers read those, and ``^caller``
  becomes ``^<caller>/output_control_node``, a NoOp after the outputs and the body's ``control_ret`` nodes.
  No IdentityN stands in for the caller: it would make every output, and every side effect, a dependency of
  any one output.

``If``/``While``/``Case`` stay functional (TF's ``lower_control_flow=False``, what TFLite and tf2onnx
expect), and so do calls of functions marked ``_implements``/``api_implements``: TFLite fuses those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from graphkit.errors import GraphkitError
from graphkit.io.functions import FunctionLibrary, OpDefs, parse_function_ref
from graphkit.io.graph import GraphIndex, TensorRef, attr_text
from graphkit.io.ops import CALL_OPS
from graphkit.io.passes import rewire
from graphkit.proto import function_pb2, graph_pb2, node_def_pb2

IMPLEMENTS = ("_implements", "api_implements")


@dataclass
class InlineReport:
    inlined: list[str] = field(default_factory=list)  # "caller (function)"
    kept: list[str] = field(default_factory=list)  # "caller (function): why"
    moved: dict[TensorRef, TensorRef] = field(default_factory=dict)  # caller output -> the tensor now


def inline_calls_in_place(graph_def: graph_pb2.GraphDef) -> InlineReport:
    """Inline every function call of the main graph, repeatedly (a body's calls become main-graph calls),
    then the calls inside the functions left (the bodies of If/While/Case), except calls of ``_implements``
    functions. Returns what was inlined and where each caller output of the main graph went."""
    report = InlineReport()
    _inline_main(graph_def, report)
    library = FunctionLibrary(graph_def)
    op_defs = OpDefs(graph_def)
    for name in library.reachable(graph_def.node):
        fdef = library.function(name)
        while _inline_in_function(fdef, library, op_defs, report):
            pass
    return report


def _callee(node: node_def_pb2.NodeDef, library: FunctionLibrary) -> function_pb2.FunctionDef | None:
    """The function a call node calls, when it is an inlinable call (not an If/While/Case)."""
    if node.op in CALL_OPS:
        return library.function(node.attr["f"].func.name)
    return library.functions.get(node.op)


def _implements(fdef: function_pb2.FunctionDef) -> str | None:
    marks = [a for a in IMPLEMENTS if a in fdef.attr]
    return f"{marks[0]} {fdef.attr[marks[0]].s.decode(errors='replace')!r}" if marks else None


def _inline_main(graph_def: graph_pb2.GraphDef, report: InlineReport) -> None:
    kept: set[str] = set()
    while True:
        library = FunctionLibrary(graph_def)
        calls = [n for n in graph_def.node
                 if (n.op in CALL_OPS or n.op in library) and n.name not in kept]
        if not calls:
            return
        op_defs = OpDefs(graph_def)
        index = GraphIndex(graph_def)
        taken = set(index.nodes)
        for node in calls:
            fdef = _callee(node, library)
            assert fdef is not None
            name = fdef.signature.name
            mark = _implements(fdef)
            if mark:
                kept.add(node.name)
                report.kept.append(f"{node.name} ({name}): {mark}, kept for TFLite fusion")
                continue
            moved = _inline(index, node, fdef, op_defs, taken)
            report.inlined.append(f"{node.name} ({name})")
            for old, new in moved.items():  # earlier callers' outputs that pointed here follow
                for key, value in report.moved.items():
                    if value == old:
                        report.moved[key] = new
            report.moved.update(moved)
        _remove(graph_def, {n.name for n in calls if n.name not in kept})


def _inline_in_function(outer: function_pb2.FunctionDef, library: FunctionLibrary, op_defs: OpDefs,
                        report: InlineReport) -> bool:
    """Inline the first inlinable call of ``outer``'s body, in the function-body reference form
    (``node:out_arg:i`` stays that form, under the caller's prefix). Returns whether one was inlined."""
    for node in outer.node_def:
        callee = _callee(node, library)
        if callee is None or _implements(callee):
            continue
        _check_call(node, callee)
        _inline_body(outer, node, callee)
        report.inlined.append(f"{outer.signature.name}/{node.name} ({callee.signature.name})")
        return True
    return False


def _inline_body(outer: function_pb2.FunctionDef, node: node_def_pb2.NodeDef,
                 callee: function_pb2.FunctionDef) -> None:
    signature = callee.signature
    names = {n.name for n in outer.node_def} | {a.name for a in outer.signature.input_arg}
    prefix = _prefix(node.name, callee, names)
    data = [t for t in node.input if not t.startswith("^")]
    controls = [t for t in node.input if t.startswith("^")]
    new: list[node_def_pb2.NodeDef] = []

    def add(name: str, op: str, inputs: list[str], dtype: int | None = None) -> str:
        made = node_def_pb2.NodeDef(name=name, op=op, input=inputs)
        if dtype is not None:
            made.attr["T"].type = dtype  # type: ignore[assignment]
        new.append(made)
        return name

    control_node = add(f"{prefix}input_control_node", "NoOp", controls) if controls else None
    arg_ref = {a.name: add(f"{prefix}input/{a.name}", "Identity",
                           [data[i], *([f"^{control_node}"] if control_node else [])], a.type) + ":output:0"
               for i, a in enumerate(signature.input_arg)}
    body = {n.name for n in callee.node_def}

    def translate(text: str) -> str:
        ref = parse_function_ref(text)
        if ref.node in body:
            return ("^" if ref.control else "") + prefix + text.lstrip("^")
        if ref.node in arg_ref and ref.out_arg is None and ref.index == 0:
            return "^" + arg_ref[ref.node].split(":")[0] if ref.control else arg_ref[ref.node]
        raise GraphkitError(f"cannot inline '{node.name}' ({signature.name}): reference '{text}' names neither a "
                            "node nor an argument")

    new += _copy_body(callee, prefix, translate, control_node, {k: v.split(":")[0] for k, v in arg_ref.items()})
    moved: dict[str, str] = {}
    outputs = []
    out_arg = _output_arg_names(node, callee)
    for k, out in enumerate(signature.output_arg):
        name = add(f"{prefix}output/{out.name}", "Identity", [translate(callee.ret[out.name])], out.type)
        moved[f"{node.name}:{out_arg[k]}"] = f"{name}:output:0"
        outputs.append(name)
    sinks = [f"^{o}" for o in outputs] + [f"^{prefix}{v}" for _, v in sorted(callee.control_ret.items())]
    done = add(f"{prefix}output_control_node", "NoOp", sinks)

    def follow(text: str) -> str:
        if text == f"^{node.name}":
            return f"^{done}"
        return moved.get(text, text)

    kept = [n for n in outer.node_def if n.name != node.name]
    for other in kept:
        if any(t.startswith((f"{node.name}:", f"^{node.name}")) for t in other.input):
            inputs = [follow(t) for t in other.input]
            del other.input[:]
            other.input.extend(inputs)
    for key, text in list(outer.ret.items()):
        outer.ret[key] = follow(text)
    for key, text in list(outer.control_ret.items()):
        if text == node.name:
            outer.control_ret[key] = done
    del outer.node_def[:]
    outer.node_def.extend([*kept, *new])


def _output_arg_names(node: node_def_pb2.NodeDef, callee: function_pb2.FunctionDef) -> list[str]:
    """How the caller's outputs are referenced in a body: ``caller:output:k`` for a PartitionedCall (one
    list arg), ``caller:<out_arg>:0`` for a direct call."""
    if node.op in CALL_OPS:
        return [f"output:{k}" for k in range(len(callee.signature.output_arg))]
    return [f"{a.name}:0" for a in callee.signature.output_arg]


def _check_call(node: node_def_pb2.NodeDef, fdef: function_pb2.FunctionDef) -> None:
    signature = fdef.signature
    where = f"cannot inline '{node.name}' ({signature.name})"
    if signature.attr:
        raise GraphkitError(f"{where}: the function is polymorphic (attrs {', '.join(a.name for a in signature.attr)})")
    data = [t for t in node.input if not t.startswith("^")]
    args = signature.input_arg
    if len(data) != len(args):
        raise GraphkitError(f"{where}: it passes {len(data)} inputs to a function of {len(args)} arguments")
    types = list(node.attr["Tin"].list.type) if "Tin" in node.attr else [a.type for a in args]
    if types != [a.type for a in args]:
        raise GraphkitError(f"{where}: its input types do not match the function's arguments")
    if any(a.number_attr or a.type_list_attr or a.type_attr for a in [*args, *signature.output_arg]):
        raise GraphkitError(f"{where}: the function has list or polymorphic arguments")


def _remove(graph_def: graph_pb2.GraphDef, names: set[str]) -> None:
    kept = [n for n in graph_def.node if n.name not in names]
    del graph_def.node[:]
    graph_def.node.extend(kept)


def _inline(index: GraphIndex, node: node_def_pb2.NodeDef, fdef: function_pb2.FunctionDef, op_defs: OpDefs,
            taken: set[str]) -> dict[TensorRef, TensorRef]:
    _check_call(node, fdef)
    signature = fdef.signature
    where = f"cannot inline '{node.name}' ({signature.name})"
    data = [t for t in node.input if not t.startswith("^")]
    controls = [t for t in node.input if t.startswith("^")]
    args = signature.input_arg
    prefix = _prefix(node.name, fdef, taken)
    new: list[node_def_pb2.NodeDef] = []

    def add(name: str, op: str, inputs: list[str], dtype: int | None = None) -> node_def_pb2.NodeDef:
        made = node_def_pb2.NodeDef(name=name, op=op, input=inputs, device=node.device)
        if dtype is not None:
            made.attr["T"].type = dtype  # type: ignore[assignment]
        taken.add(name)
        new.append(made)
        return made

    control_node = add(f"{prefix}input_control_node", "NoOp", controls).name if controls else None
    arg_ref = {}
    for i, arg in enumerate(args):
        arg_ref[arg.name] = add(f"{prefix}input/{arg.name}", "Identity",
                                [data[i], *([f"^{control_node}"] if control_node else [])], arg.type).name
    body = {n.name: n for n in fdef.node_def}

    def translate(text: str) -> str:
        ref = parse_function_ref(text)
        if ref.node not in body:
            if ref.node in arg_ref and ref.out_arg is None and ref.index == 0:
                return ("^" if ref.control else "") + arg_ref[ref.node]
            raise GraphkitError(f"{where}: reference '{text}' names neither a node nor an argument")
        if ref.control:
            return f"^{prefix}{ref.node}"
        assert ref.out_arg is not None
        port = op_defs.flat_port(body[ref.node], ref.out_arg, ref.index)
        return f"{prefix}{ref.node}" + (f":{port}" if port else "")

    copies = _copy_body(fdef, prefix, translate, control_node, arg_ref)
    taken.update(c.name for c in copies)
    new += copies
    moved: dict[TensorRef, TensorRef] = {}
    outputs = []
    for k, out in enumerate(signature.output_arg):
        if out.name not in fdef.ret:
            raise GraphkitError(f"{where}: output '{out.name}' has no ret")
        identity = add(f"{prefix}output/{out.name}", "Identity", [translate(fdef.ret[out.name])], out.type)
        moved[TensorRef(node.name, k)] = TensorRef(identity.name)
        outputs.append(identity.name)
    if index.control_consumers.get(node.name):
        sinks = [f"^{o}" for o in outputs] + [f"^{prefix}{v}" for _, v in sorted(fdef.control_ret.items())]
        done = add(f"{prefix}output_control_node", "NoOp", sinks)
        moved[TensorRef(node.name, control=True)] = TensorRef(done.name, control=True)
    index.add(new)
    rewire(index, moved)
    return moved


def _copy_body(fdef: function_pb2.FunctionDef, prefix: str, translate: Callable[[str], str],
               control_node: str | None, arg_nodes: dict[str, str]) -> list[node_def_pb2.NodeDef]:
    """The body's nodes under ``prefix``, inputs translated; input-less ones after ``control_node``;
    colocations and TF1 frame names moved along."""
    body = {n.name: n for n in fdef.node_def}
    copies = []
    for inner in fdef.node_def:
        copy = node_def_pb2.NodeDef()
        copy.CopyFrom(inner)
        copy.name = prefix + inner.name
        del copy.input[:]
        copy.input.extend(translate(t) for t in inner.input)
        if not copy.input and control_node:
            copy.input.append(f"^{control_node}")
        if "_class" in copy.attr:
            _move_colocations(copy, body, arg_nodes, prefix)
        if copy.op in ("Enter", "RefEnter"):
            copy.attr["frame_name"].s = (prefix + attr_text(copy.attr["frame_name"].s)).encode()
        copies.append(copy)
    return copies


def _prefix(caller: str, fdef: function_pb2.FunctionDef, taken: set[str]) -> str:
    """``caller/``, or ``caller_inlined_N/`` when a name it would make is taken already."""
    made = [f"input/{a.name}" for a in fdef.signature.input_arg] + [n.name for n in fdef.node_def] + [
        f"output/{a.name}" for a in fdef.signature.output_arg] + ["input_control_node", "output_control_node"]
    base, k = caller, 0
    while any(f"{base}/{m}" in taken for m in made):
        k += 1
        base = f"{caller}_inlined_{k}"
    return base + "/"


def _move_colocations(node: node_def_pb2.NodeDef, body: dict[str, node_def_pb2.NodeDef], arg_ref: dict[str, str],
                      prefix: str) -> None:
    entries = []
    for entry in node.attr["_class"].list.s:
        if not entry.startswith(b"loc:@"):
            entries.append(entry)
            continue
        target = attr_text(entry[5:])
        if target in body:
            entries.append(f"loc:@{prefix}{target}".encode())
        elif target in arg_ref:
            entries.append(f"loc:@{arg_ref[target]}".encode())
    if entries:
        del node.attr["_class"].list.s[:]
        node.attr["_class"].list.s.extend(entries)
    else:
        del node.attr["_class"]


def inline_call_in_place(graph_def: graph_pb2.GraphDef, name: str) -> dict[TensorRef, TensorRef]:
    """Inline the one call node ``name`` (a PartitionedCall, or a direct call of a library function); its
    consumers read the body's outputs. Returns where each of its outputs went."""
    library = FunctionLibrary(graph_def)
    index = GraphIndex(graph_def)
    node = index.node(name)
    fdef = _callee(node, library)
    if fdef is None:
        raise GraphkitError(f"node '{name}' ({node.op}) is not a call of a library function")
    moved = _inline(index, node, fdef, OpDefs(graph_def), set(index.nodes))
    _remove(graph_def, {name})
    return moved
