"""The function library of a GraphDef: FunctionDefs, their call graph, and the two reference forms.

Every TF 2.x graph keeps code in ``library.function``: the branches of ``If``/``Case``, the ``cond`` and
``body`` of ``While``, the callees of ``(Stateful)PartitionedCall`` and direct calls (a node whose op is a
function name). Inside a FunctionDef a node input is ``arg`` / ``arg:i`` (a signature input), or
``node:out_arg:i`` (element *i* of the node's named output arg), or ``^node``; a GraphDef uses flat ports,
``node:k``. Translating needs each op's output args, which come from the library's own signatures, the
graph's ``stripped_op_list`` and the OpDef table shipped with graphkit (every op TF 2.21 registers,
``tools/gen_opdefs.py``). Sources: ``core/framework/function.proto``, ``function_def_to_graph.py:354-388``,
``FunctionInstantiationHelper::BuildNodeOutputIndex`` in ``core/framework/function.cc``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from graphkit.errors import GraphkitError
from graphkit.proto import attr_value_pb2, function_pb2, graph_pb2, node_def_pb2, op_def_pb2

# the function-valued attrs of TF's functional ops (a ``func`` or a ``list(func)``)
CALL_ATTRS = ("f", "then_branch", "else_branch", "branches", "cond", "body")
# op -> (index of the first input passed to the callee, the attr holding the input types)
CALLERS: dict[str, tuple[int, str]] = {
    "If": (1, "Tin"), "StatelessIf": (1, "Tin"), "Case": (1, "Tin"), "StatelessCase": (1, "Tin"),
    "While": (0, "T"), "StatelessWhile": (0, "T"), "PartitionedCall": (0, "Tin"),
    "StatefulPartitionedCall": (0, "Tin"),
}


SHIPPED_TF = "2.21"  # the TensorFlow whose ops data/tf_ops.pb.gz holds (tools/gen_opdefs.py)


@functools.cache
def shipped_op_defs() -> dict[str, op_def_pb2.OpDef]:
    """Every op TensorFlow SHIPPED_TF registers, by name (descriptions stripped; loaded on first use)."""
    import gzip
    from importlib import resources

    data = gzip.decompress(resources.files("graphkit.io").joinpath("data/tf_ops.pb.gz").read_bytes())
    ops = op_def_pb2.OpList.FromString(data)
    return {op.name: op for op in ops.op}


@dataclass(frozen=True)
class FunctionRef:
    """One input string of a function body: ``arg``/``arg:i``, ``node:out_arg:i`` or ``^node``."""

    node: str
    out_arg: str | None = None  # None: an argument of the function (or a control input)
    index: int = 0
    control: bool = False

    def __str__(self) -> str:
        if self.control:
            return "^" + self.node
        if self.out_arg is None:
            return self.node if self.index == 0 else f"{self.node}:{self.index}"
        return f"{self.node}:{self.out_arg}:{self.index}"


def parse_function_ref(text: str) -> FunctionRef:
    """Parse a FunctionDef node input or ``ret`` value."""
    if text.startswith("^"):
        return FunctionRef(text[1:], control=True)
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return FunctionRef(parts[0])
        if len(parts) == 2:
            return FunctionRef(parts[0], None, int(parts[1]))
        if len(parts) == 3:
            return FunctionRef(parts[0], parts[1], int(parts[2]))
    except ValueError:
        pass
    raise GraphkitError(f"'{text}' is not a function-body reference (expected ARG, ARG:I or NODE:OUT_ARG:I)")


class OpDefs:
    """Op signatures for one graph: its library functions (direct calls), its ``stripped_op_list``, then
    the shipped table. ``get`` returns None for an op nobody defines (a custom op)."""

    def __init__(self, graph_def: graph_pb2.GraphDef | None = None,
                 stripped: op_def_pb2.OpList | None = None) -> None:
        self._own: dict[str, op_def_pb2.OpDef] = {}
        if stripped is not None:
            self._own.update((op.name, op) for op in stripped.op)
        if graph_def is not None:
            self._own.update((f.signature.name, f.signature) for f in graph_def.library.function)

    def add(self, signature: op_def_pb2.OpDef) -> None:
        """A function added to the library (a specialized copy, say)."""
        self._own[signature.name] = signature

    def get(self, op: str) -> op_def_pb2.OpDef | None:
        return self._own.get(op) or shipped_op_defs().get(op)

    def output_args(self, node: node_def_pb2.NodeDef) -> list[tuple[str, int]]:
        """``(name, size)`` of each output arg of ``node`` (a list arg's size from its attrs)."""
        op_def = self.get(node.op)
        if op_def is None:
            raise GraphkitError(f"node '{node.name}': op '{node.op}' is neither a TensorFlow op nor a library "
                                "function, so its outputs cannot be numbered")
        return [(arg.name, arg_size(arg, node, op_def)) for arg in op_def.output_arg]

    def flat_port(self, node: node_def_pb2.NodeDef, out_arg: str, index: int) -> int:
        """The GraphDef port of ``node:out_arg:index``: the sizes of the earlier output args, plus index."""
        offset = 0
        for name, size in self.output_args(node):
            if name == out_arg:
                if index >= size:
                    break
                return offset + index
            offset += size
        raise GraphkitError(f"node '{node.name}' ({node.op}) has no output '{out_arg}:{index}'")

    def function_ref(self, node: node_def_pb2.NodeDef, port: int) -> str:
        """The function-body form ``node:out_arg:i`` of flat output ``port``."""
        offset = 0
        for name, size in self.output_args(node):
            if port < offset + size:
                return f"{node.name}:{name}:{port - offset}"
            offset += size
        raise GraphkitError(f"node '{node.name}' ({node.op}) has no output {port}")


def arg_size(arg: op_def_pb2.OpDef.ArgDef, node: node_def_pb2.NodeDef, op_def: op_def_pb2.OpDef) -> int:
    """How many tensors an arg stands for (``_get_num_args`` in function_def_to_graph.py)."""
    if arg.number_attr:
        return int(_attr(node, op_def, arg.number_attr).i)
    if arg.type_list_attr:
        return len(_attr(node, op_def, arg.type_list_attr).list.type)
    return 1


def _attr(node: node_def_pb2.NodeDef, op_def: op_def_pb2.OpDef, name: str) -> attr_value_pb2.AttrValue:
    if name in node.attr:
        return node.attr[name]
    for attr in op_def.attr:  # stripped default attrs
        if attr.name == name and attr.HasField("default_value"):
            return attr.default_value
    raise GraphkitError(f"node '{node.name}' ({node.op}) lacks attr '{name}'")


@dataclass(frozen=True)
class Call:
    """One function a node calls: through attr ``attr`` (element ``position`` of a ``list(func)``), or as
    its op (``attr`` is ``""``: a direct call)."""

    function: str
    attr: str
    position: int = -1


class FunctionLibrary:
    """The library's functions by name and the calls each node makes (one index, built once)."""

    def __init__(self, graph_def: graph_pb2.GraphDef) -> None:
        self.graph_def = graph_def
        self.functions: dict[str, function_pb2.FunctionDef] = {f.signature.name: f
                                                               for f in graph_def.library.function}

    def __contains__(self, name: object) -> bool:
        return name in self.functions

    def __iter__(self) -> Iterator[str]:
        return iter(self.functions)

    def __len__(self) -> int:
        return len(self.functions)

    def function(self, name: str) -> function_pb2.FunctionDef:
        try:
            return self.functions[name]
        except KeyError:
            raise GraphkitError(f"function '{name}' is called but not in the graph's library") from None

    def calls(self, node: node_def_pb2.NodeDef) -> list[Call]:
        """The library functions ``node`` calls (its op, ``func`` and ``list(func)`` attrs)."""
        found = [Call(node.op, "")] if node.op in self.functions else []
        for key, value in sorted(node.attr.items()):
            if value.HasField("func") and value.func.name:
                found.append(Call(value.func.name, key))
            elif value.HasField("list") and value.list.func:
                found += [Call(f.name, key, i) for i, f in enumerate(value.list.func)]
        return found

    def callees(self, name: str) -> list[str]:
        """The functions ``name``'s body calls, each once, in order."""
        out: dict[str, None] = {}
        for node in self.function(name).node_def:
            out.update((c.function, None) for c in self.calls(node))
        return list(out)

    def reachable(self, nodes: Iterable[node_def_pb2.NodeDef]) -> list[str]:
        """Every function ``nodes`` call, directly or through other functions (first reached first)."""
        seen: dict[str, None] = {}
        stack = [c.function for node in nodes for c in self.calls(node)]
        stack.reverse()
        while stack:
            name = stack.pop()
            if name in seen or name not in self.functions:
                continue
            seen[name] = None
            stack.extend(reversed(self.callees(name)))
        return list(seen)

    def call_tree(self, nodes: Iterable[node_def_pb2.NodeDef]) -> list[tuple[int, str, str]]:
        """``(depth, caller node, function)`` rows of the call tree from ``nodes``, depth first; a function
        met again under the same branch is not expanded twice (recursion is refused by TF anyway)."""
        rows: list[tuple[int, str, str]] = []

        def walk(body: Iterable[node_def_pb2.NodeDef], depth: int, path: tuple[str, ...]) -> None:
            for node in body:
                for call in self.calls(node):
                    rows.append((depth, node.name, call.function))
                    if call.function in self.functions and call.function not in path:
                        walk(self.functions[call.function].node_def, depth + 1, (*path, call.function))

        walk(nodes, 0, ())
        return rows


def arg_names(fdef: function_pb2.FunctionDef) -> list[str]:
    return [arg.name for arg in fdef.signature.input_arg]


def nodes_with_function(graph_def: graph_pb2.GraphDef) -> Iterator[tuple[str | None, node_def_pb2.NodeDef]]:
    """Every node of the main graph (function None) and of every library function, with its function."""
    for node in graph_def.node:
        yield None, node
    for fdef in graph_def.library.function:
        for node in fdef.node_def:
            yield fdef.signature.name, node
