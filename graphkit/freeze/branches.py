"""Clean-up of the functional control flow a frozen graph keeps: unused outputs of ``If``/``Case`` removed
with the branch code only they needed, and every ``If``/``While``/``Case`` kept functional.

``cond_v2`` rewrites a branch for its gradient: the ``If`` gains outputs for the intermediates the
gradient needs, many of them ``Optional`` variants (``OptionalFromValue``) that no inference consumer can
represent (tf2onnx's ONNX then fails to load: "Invalid tensor data type 0"). In a frozen graph nothing
reads them. TF's Grappler prunes such outputs only when it optimizes the graph; a frozen graph should not
need that. Each ``If``/``Case`` whose outputs are partly unread gets branch copies returning only the read
outputs (``<branch>_pruned``), bodies cut to what those returns, the ``control_ret`` side effects and any
stateful op need (TF's function instantiation keeps stateful ops too: ``PruneFunctionBody``).
"""

from __future__ import annotations

from collections.abc import Sequence

from graphkit.io.functions import FunctionLibrary, OpDefs, nodes_with_function, parse_function_ref
from graphkit.io.graph import GraphIndex, unique_name
from graphkit.io.ops import BRANCH_OPS, FUNCTIONAL_CONTROL_FLOW
from graphkit.io.passes import reachable
from graphkit.proto import function_pb2, graph_pb2, node_def_pb2


def prune_unused_branch_outputs_in_place(graph_def: graph_pb2.GraphDef) -> list[str]:
    """Do it in the main graph and every library function; returns ``"node: k unused outputs"`` per node."""
    library = FunctionLibrary(graph_def)
    taken = set(library.functions)
    added: list[function_pb2.FunctionDef] = []
    changed = _prune_in(graph_def, graph_def.node, [], library, taken, added)
    for fdef in graph_def.library.function:
        changed += _prune_in(fdef, fdef.node_def, list(fdef.ret.values()), library, taken, added)
    graph_def.library.function.extend(added)
    return changed


def _prune_in(container: graph_pb2.GraphDef | function_pb2.FunctionDef, nodes: Sequence[node_def_pb2.NodeDef],
              rets: list[str], library: FunctionLibrary, taken: set[str],
              added: list[function_pb2.FunctionDef]) -> list[str]:
    in_function = isinstance(container, function_pb2.FunctionDef)
    branching = {n.name: n for n in nodes if n.op in BRANCH_OPS}
    if not branching:
        return []
    used: dict[str, set[int]] = {name: set() for name in branching}
    for text in [t for n in nodes for t in n.input if not t.startswith("^")] + rets:
        producer, port = _port(text, in_function)
        if producer in used:
            used[producer].add(port)
    changed = []
    for name, node in branching.items():
        count = len(node.attr["Tout"].list.type)
        keep = sorted(p for p in used[name] if p < count)
        if len(keep) == count:
            continue
        funcs = [node.attr[a].func for a in ("then_branch", "else_branch") if a in node.attr]
        funcs += list(node.attr["branches"].list.func) if "branches" in node.attr else []
        for func in funcs:
            copy = _pruned(library.function(func.name), keep, taken)
            added.append(copy)
            func.name = copy.signature.name
        types = [node.attr["Tout"].list.type[k] for k in keep]
        node.attr["Tout"].list.ClearField("type")
        node.attr["Tout"].list.type.extend(types)
        if "output_shapes" in node.attr and len(node.attr["output_shapes"].list.shape) == count:
            shapes = [node.attr["output_shapes"].list.shape[k] for k in keep]
            del node.attr["output_shapes"].list.shape[:]
            node.attr["output_shapes"].list.shape.extend(shapes)
        node.attr.pop("_output_shapes", None)
        _renumber(container, name, {old: new for new, old in enumerate(keep)}, in_function)
        changed.append(f"{name}: {count - len(keep)} unused outputs")
    return changed


def _port(text: str, in_function: bool) -> tuple[str, int]:
    if not in_function:
        node, _, port = text.partition(":")
        return node, int(port or 0)
    ref = parse_function_ref(text)
    return (ref.node, ref.index) if ref.out_arg == "output" else ("", -1)


def _renumber(container: graph_pb2.GraphDef | function_pb2.FunctionDef, name: str, moved: dict[int, int],
              in_function: bool) -> None:
    def follow(text: str) -> str:
        node, port = _port(text, in_function)
        if node != name or text.startswith("^"):
            return text
        new = moved[port]
        if in_function:
            return f"{name}:output:{new}"
        return name if new == 0 else f"{name}:{new}"

    nodes = container.node_def if isinstance(container, function_pb2.FunctionDef) else container.node
    for node in nodes:
        if any(t.partition(":")[0] == name for t in node.input):
            inputs = [follow(t) for t in node.input]
            del node.input[:]
            node.input.extend(inputs)
    if isinstance(container, function_pb2.FunctionDef):
        for key, text in list(container.ret.items()):
            container.ret[key] = follow(text)


def _pruned(fdef: function_pb2.FunctionDef, keep: list[int], taken: set[str]) -> function_pb2.FunctionDef:
    """A copy of branch ``fdef`` returning only outputs ``keep``, its body cut to what they need."""
    copy = function_pb2.FunctionDef()
    copy.CopyFrom(fdef)
    copy.signature.name = unique_name(f"{fdef.signature.name}_pruned", taken)
    outputs = [fdef.signature.output_arg[k] for k in keep]
    for out in fdef.signature.output_arg:
        if out not in outputs:
            del copy.ret[out.name]
    del copy.signature.output_arg[:]
    copy.signature.output_arg.extend(outputs)
    index = GraphIndex(copy)
    op_defs = OpDefs()
    stateful = [n.name for n in copy.node_def if (d := op_defs.get(n.op)) is not None and d.is_stateful]
    roots = [parse_function_ref(t).node for t in copy.ret.values()] + list(copy.control_ret.values()) + stateful
    needed = reachable(index, [r for r in roots if r in index.nodes])
    kept: list[node_def_pb2.NodeDef] = [n for n in copy.node_def if n.name in needed]
    del copy.node_def[:]
    copy.node_def.extend(kept)
    return copy


def keep_control_flow_functional_in_place(graph_def: graph_pb2.GraphDef) -> int:
    """Set ``_lower_using_switch_merge`` false on every If/While/Case that has it true (main graph and
    library), as TF's freezer does with ``lower_control_flow=False``
    (``convert_to_constants.py:disable_lower_using_switch_merge``): otherwise Grappler lowers them to
    Switch/Merge when a consumer (tf2onnx, TFLite) optimizes the graph. Returns how many nodes changed."""
    changed = 0
    for _, node in nodes_with_function(graph_def):
        if node.op in FUNCTIONAL_CONTROL_FLOW and "_lower_using_switch_merge" in node.attr \
                and node.attr["_lower_using_switch_merge"].b:
            node.attr["_lower_using_switch_merge"].b = False
            changed += 1
    return changed
