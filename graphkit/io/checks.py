"""What TensorFlow's importer refuses, checked on the GraphDef before any command writes one
(docs/formats.md section 7): names, inputs, cycles, attrs, DataTypes, tensors, shapes, devices, and the
same in every function body. ``check_importable`` is what commands call; ``validate`` lists the problems."""

from __future__ import annotations

import os
import re
from collections import defaultdict, deque
from collections.abc import Collection, Sequence

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.graph import NODE_NAME, GraphIndex, as_index, input_node
from graphkit.io.ops import MERGE_OPS, NEXT_ITERATION_OPS
from graphkit.proto import graph_pb2, node_def_pb2, tensor_pb2, types_pb2


def topological_order(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Node names with every node after its inputs. TF1 loops are cut at NextIteration -> Merge back edges,
    as TF's graph constructor does; any other cycle is an error naming the nodes on it."""
    order, stuck = _sorted(as_index(graph))
    if stuck:
        raise GraphkitError(f"the graph has a cycle that is not a TF1 while loop, through: {', '.join(stuck[:8])}")
    return order


def cycle_nodes(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """The nodes on, or only reachable through, a cycle TF's importer refuses (graph_constructor.cc: "The
    graph couldn't be sorted in topological order"); empty when there is none. Graphs are nearly always
    stored with each node after its inputs, which one pass over the edges proves; the full sort runs only
    when that pass finds a node before one of its inputs."""
    from graphkit.io.passes import in_order

    index = as_index(graph)
    if in_order(index.inputs, index.ops, sources_ok=True):  # (earlier, a source -- no cycle runs through
        return []  # it -- or dangling, which validate reports)
    return _sorted(index)[1]


def _sorted(index: GraphIndex) -> tuple[list[str], list[str]]:
    """Kahn's sort: the order, and the nodes it could not place (a cycle, and what only it feeds)."""
    pending: dict[str, int] = {}
    users: dict[str, list[str]] = defaultdict(list)
    nodes, ops = index.nodes, index.ops
    for name, deps_of in index.deps.items():
        merge = ops[name] in MERGE_OPS
        deps = 0
        for src in deps_of:
            if src not in nodes:
                continue
            if merge and ops[src] in NEXT_ITERATION_OPS:
                continue
            deps += 1
            users[src].append(name)
        pending[name] = deps
    ready = deque(name for name, deps in pending.items() if deps == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for user in users[name]:
            pending[user] -= 1
            if pending[user] == 0:
                ready.append(user)
    return order, [n for n, d in pending.items() if d > 0] if len(order) < len(pending) else []


_DATA_TYPES = frozenset(types_pb2.DataType.values())
_GRAPH_INPUT = re.compile(r"^\^?[A-Za-z0-9.][A-Za-z0-9_.\-/>]*(:(0|[1-9][0-9]*))?$")


def validate(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Problems that stop TF from importing a graph (``core/common_runtime/graph_constructor.cc``): duplicate
    or invalid names, malformed or dangling inputs, an output index past the producer's outputs, bad
    colocations, a cycle that is not a TF1 loop, a type attr holding no DataType (``attr_value_util.cc``:
    "AttrValue has invalid DataType enum"). A FunctionDef body is checked for what applies to it."""
    index = as_index(graph)
    names = index.inputs  # its keys are the node names
    problems = [f"duplicate node name '{n}'" for n in index.duplicates]
    arguments = index.arguments
    in_function = index.function is not None
    if not in_function and not _NODE_NAMES.fullmatch("\n".join(names) + "\n" if names else ""):
        problems += [f"'{name}' is not a valid node name" for name in names if not NODE_NAME.match(name)]
    odd = _odd_inputs(names)  # (node, input) whose input is not a node's bare name: few
    ported: list[tuple[str, str, int]] = []  # (reader, producer, port) for port > 0: checked against op defs
    for name, text in odd:
        if input_node(text) not in names and input_node(text) not in arguments:
            problems.append(f"node '{name}' reads '{text}', which is not in the graph")
        elif not in_function:
            if not _GRAPH_INPUT.match(text):
                problems.append(f"node '{name}' has a malformed input '{text}' (expected NAME, NAME:INDEX or "
                                "^NAME)")
            elif not text.startswith("^"):
                ported.append((name, input_node(text), int(text.rpartition(":")[2])))
    if "" in index.ops.values():
        problems += [f"node '{name}' has no op" for name, op in index.ops.items() if not op]
    for name, targets in index.colocated.items():
        problems += [f"node '{name}' is colocated with '{t}', which is not in the graph" for t in targets
                     if t not in names and t not in arguments]
    problems += _port_problems(index, ported)
    if not in_function:
        problems += _arity_problems(index, odd)
    stuck = cycle_nodes(index)
    if stuck:
        problems.append(f"a cycle that is not a TF1 while loop runs through {', '.join(stuck[:8])}")
    problems += _node_problems(index)
    return problems


# every name valid (NODE_NAME between its anchors), each followed by a newline: one regex call for a whole
# graph (a name with a newline in it fails, and the names are then checked one by one)
_NAME_BODY = NODE_NAME.pattern.removeprefix("^").removesuffix(r"\Z")
_NODE_NAMES = re.compile(rf"(?:{_NAME_BODY}\n)*")


def _odd_inputs(inputs: dict[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Each (node, input string) whose string is not a node's bare name -- a port, a control input, or
    dangling -- in order (in C when built: the same list)."""
    from graphkit.io.scan import compiled

    helpers = compiled()
    if helpers is not None and isinstance(inputs, dict):
        return helpers.odd_inputs(inputs)
    return [(name, text) for name, texts in inputs.items() for text in texts if text not in inputs]


def _arity_problems(index: GraphIndex, odd: list[tuple[str, str]]) -> list[str]:
    """Nodes whose number of data inputs is not what their op takes (TF: "NodeDef expected inputs 'float,
    float' do not match 1 inputs specified"), for ops of a fixed arity (no list inputs). ``odd``: the
    inputs that are not bare names (:func:`_odd_inputs`), where the control inputs are."""
    from graphkit.io.functions import OpDefs

    op_defs = OpDefs(index.graph_def)
    ops, inputs = index.ops, index.inputs
    arity: dict[str, int] = {}
    for op in set(ops.values()):
        op_def = op_defs.get(op)
        if op_def is not None and not any(a.number_attr or a.type_list_attr for a in op_def.input_arg):
            arity[op] = len(op_def.input_arg)
    controls: dict[str, int] = {}
    for name, text in odd:
        if text.startswith("^"):
            controls[name] = controls.get(name, 0) + 1
    # the nodes without control inputs by (op, input count), each kind judged once
    plain = [n for n in inputs if n not in controls] if controls else list(inputs)
    kinds = set(zip(map(ops.__getitem__, plain), map(len, map(inputs.__getitem__, plain)), strict=True))
    wrong = {(op, got) for op, got in kinds if op in arity and got != arity[op]}
    suspects = {n for n in plain if (ops[n], len(inputs[n])) in wrong} if wrong else set()
    problems = []
    for name in [n for n in inputs if n in controls or n in suspects] if suspects or controls else ():
        op = ops[name]
        got = len(inputs[name]) - controls.get(name, 0)
        if op in arity and got != arity[op]:
            problems.append(f"node '{name}' ({op}) has {got} data inputs; its op takes {arity[op]}")
    return problems


# DeviceSpec's device types without a plugin (python/framework/device_spec.py _VALID_DEVICE_TYPES); a
# pluggable device is written /device:TYPE:N, which takes any type
_DEVICE_TYPES = frozenset({"CPU", "GPU", "TPU", "CUSTOM", "EPU"})


def device_problem(spec: str) -> str | None:
    """Why ``tf.import_graph_def`` would refuse a node's device string, or None: the rules of
    ``DeviceSpecV2._string_to_components`` (``/job:J/replica:R/task:T/device:TYPE:N``, the short ``/cpu:0``,
    ``*`` indexes, one device type)."""
    device_type = None
    for part in spec.split("/"):
        y = part.split(":")
        if len(y) == 2 and y[0] == "job":
            continue
        if len(y) == 2 and y[0] in ("replica", "task"):
            if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", y[1]):  # DeviceSpec makes them ints
                return f"device '{spec}' has the {y[0]} '{y[1]}', which is no number"
            continue
        if len(y) in (1, 2) and y[0].upper() in _DEVICE_TYPES or len(y) == 3 and y[0] == "device":
            if device_type is not None:
                return f"device '{spec}' names more than one device type"
            device_type = y[1] if len(y) == 3 else y[0]
            index = y[-1] if len(y) > 1 else "*"
            if index != "*" and not re.fullmatch(r"\s*[+-]?[0-9]+\s*", index):
                return f"device '{spec}' has the index '{index}', which is no number"
        elif y[0] != "":
            return f"device '{spec}' has a part '{y[0]}' TF does not know"
    return None


def library_problems(graph_def: graph_pb2.GraphDef) -> list[str]:
    """What :func:`validate` finds in each function body of the library, and body references
    ``node:out_arg:i`` to an output the node's op does not have (TF: "input ... is not found")."""
    from graphkit.io.functions import OpDefs

    op_defs = OpDefs(graph_def)
    problems = []
    for fdef in graph_def.library.function:
        where = f"function '{fdef.signature.name}'"
        index = GraphIndex(fdef)
        problems += [f"{where}: {p}" for p in validate(index)]
        for name, texts in index.inputs.items():
            for text in texts:
                parts = text.split(":")
                node = index.nodes.get(parts[0]) if len(parts) == 3 else None
                if node is None or op_defs.get(node.op) is None:
                    continue  # an argument, a plain reference, or an op only a custom library defines
                try:
                    op_defs.flat_port(node, parts[1], int(parts[2]))
                except (GraphkitError, ValueError):
                    problems.append(f"{where}: node '{name}' reads '{text}', which '{parts[0]}' ({node.op}) "
                                    "does not output")
    return problems


def tensor_problem(tensor: tensor_pb2.TensorProto) -> str | None:
    """What makes a TensorProto no tensor TF could build (``Tensor::FromProto``, and the Const shape
    function at import): a negative or unknown dimension, more elements than int64 counts, tensor_content
    whose length is not the shape's; None when it is sound."""
    if tensor.tensor_shape.unknown_rank:
        return "its shape has an unknown rank"
    dims = [d.size for d in tensor.tensor_shape.dim]
    if any(d < 0 for d in dims):
        return f"its shape [{','.join(map(str, dims))}] has a negative dimension"
    count = 1
    for d in dims:
        count *= d
    if count >= 1 << 63:
        return f"its shape [{','.join(map(str, dims))}] has more elements than int64 counts"
    size = dtypes.ITEMSIZE.get(dtypes.base(tensor.dtype))
    content = len(tensor.tensor_content)
    if content and size is not None and content != count * size:
        return f"its tensor_content holds {content} bytes where shape [{','.join(map(str, dims))}] needs {count * size}"
    return None


def _node_problems(index: GraphIndex) -> list[str]:
    """Per node: attrs its op requires that are missing (TF: "NodeDef missing attr"), attrs without a value,
    type attrs holding no DataType (``attr_value_util.cc``: "AttrValue has invalid DataType enum"), tensors
    and shapes no TF could build, device strings it cannot parse. A scanned file's unparsed nodes had their
    wire form checked (:func:`graphkit.io.scan.scan_graph_file`); their attr names come from the table."""
    from graphkit.io.scan import TOO_DEEP, available, node_wire_problem

    required = _RequiredAttrs(index)
    compiled = available()  # each node's attr values checked in C, the Python loop only to name a problem
    problems = []
    for node in index.parsed_nodes():
        problems += required.problems(node.name, node.op, tuple(node.attr))
        problems += required.type_problems(node)
        if "_class" in node.attr:
            problems += _class_problem(node)
        why = node_wire_problem(node) if compiled else "unchecked"
        if why:
            # what protobuf parsed and hides (an attr entry without its value) only the wire check sees
            found = _attr_problems(node)
            problems += found or ([f"node '{node.name}': {why}"] if compiled and why != TOO_DEEP else [])
    problems += [f"node '{name}': {why}" for device, name in index.devices().items()
                 if (why := device_problem(device))]
    unparsed, attr_keys = index.unparsed_attr_keys()
    ops = index.ops
    # each (op, attr names) judged once; the nodes of a kind with a problem, or a _class, looked up after
    kinds = set(zip(map(ops.__getitem__, unparsed), map(attr_keys.__getitem__, unparsed), strict=True))
    flagged = {kind for kind in kinds if "_class" in kind[1] or required.problems("", *kind)}
    for name in [n for n in attr_keys if n in unparsed and (ops[n], attr_keys[n]) in flagged] if flagged else ():
        op, keys = ops[name], attr_keys[name]
        problems += required.problems(name, op, keys)
        if "_class" in keys:  # few nodes have one: parsed to read it as TF's importer does
            problems += _class_problem(index.nodes[name])
    return problems


class _RequiredAttrs:
    """The attrs each op's OpDef declares without a default, and whether a node has them. Most nodes of one
    op share their attr names, so each (op, names) is judged once."""

    def __init__(self, index: GraphIndex) -> None:
        from graphkit.io.functions import OpDefs

        self.op_defs = OpDefs(index.graph_def)
        self.required: dict[str, frozenset[str] | None] = {}
        self.verdicts: dict[tuple[str, Sequence[str]], str | None] = {}
        self.allowed: dict[str, dict[str, frozenset[int]]] = {}

    def problems(self, name: str, op: str, keys: Sequence[str]) -> list[str]:
        try:
            lacking = self.verdicts[op, keys]
        except KeyError:
            lacking = self.verdicts[op, keys] = self._missing(op, keys)
        return [f"node '{name}' ({op}) lacks attr '{lacking}', which its op requires"] if lacking else []

    def type_problems(self, node: node_def_pb2.NodeDef) -> list[str]:
        """Type attrs holding a type their op does not allow (TF's ValidateNodeDef: "Value for attr 'T' of
        double is not in the list of allowed values")."""
        if node.op not in self.allowed:
            op_def = self.op_defs.get(node.op)
            self.allowed[node.op] = {} if op_def is None else {
                a.name: frozenset(a.allowed_values.list.type) for a in op_def.attr
                if a.type in ("type", "list(type)") and a.allowed_values.list.type}
        problems = []
        for key, codes in self.allowed[node.op].items():
            if key not in node.attr:
                continue
            value = node.attr[key]
            kind = value.WhichOneof("value")
            types = [value.type] if kind == "type" else list(value.list.type) if kind == "list" else []
            bad = [t for t in types if dtypes.base(t) not in codes]
            if bad:
                allowed = ", ".join(sorted(dtypes.name(c) for c in codes))
                problems.append(f"node '{node.name}' ({node.op}) has attr '{key}' = {dtypes.name(bad[0])}, which "
                                f"its op does not allow (allowed: {allowed})")
        return problems

    def _missing(self, op: str, keys: Collection[str]) -> str | None:
        if op not in self.required:
            op_def = self.op_defs.get(op)
            self.required[op] = None if op_def is None else frozenset(
                a.name for a in op_def.attr if not a.HasField("default_value"))
        need = self.required[op]
        absent = [a for a in need if a not in keys] if need else []
        return min(absent) if absent else None


def _class_problem(node: node_def_pb2.NodeDef) -> list[str]:
    """TF's importer reads ``_class`` as a list of strings (importer.py ``_GetColocationNames``: "Expected
    binary or unicode string" for anything else)."""
    value = node.attr["_class"]
    kind = value.WhichOneof("value")
    if kind is None:
        return []  # an attr with no value: reported with the others
    if kind != "list" or any(f.name != "s" for f, _ in value.list.ListFields()):
        return [f"node '{node.name}' has a _class attr that is not a list of strings (TF reads colocations from it)"]
    for entry in value.list.s:
        try:
            entry.decode("utf-8")
        except UnicodeDecodeError:
            return [f"node '{node.name}' has a _class entry {entry!r} that is not UTF-8 (TF's importer decodes it)"]
    return []


def _attr_problems(node: node_def_pb2.NodeDef) -> list[str]:
    """One parsed node's attr values: a Const's value of another dtype, attrs with no value, shapes with a
    dimension below -1, types that are no DataType, tensors no TF could build."""
    problems = []
    attrs = node.attr
    if node.op == "Const" and "dtype" in attrs and "value" in attrs and (
            attrs["value"].tensor.dtype != attrs["dtype"].type):
        problems.append(f"node '{node.name}' (Const) has dtype {attrs['dtype'].type} but a value of dtype "
                        f"{attrs['value'].tensor.dtype}")
    for key, value in attrs.items():
        where = f"node '{node.name}' has attr '{key}'"
        kind = value.WhichOneof("value")
        if kind is None:
            if not key.startswith("_"):  # TF: "AttrValue missing value with expected type ..."
                problems.append(f"{where} with no value")
            continue
        shapes = [value.shape] if kind == "shape" else list(value.list.shape) if kind == "list" else []
        problems += [f"{where} holding a shape with a dimension below -1 ([{','.join(str(d.size) for d in shape.dim)}])"
                     for shape in shapes if any(d.size < -1 for d in shape.dim)]
        types = [value.type] if kind == "type" else list(value.list.type) if kind == "list" else []
        bad = [t for t in types if t not in _DATA_TYPES]
        if bad:
            problems.append(f"{where} = {bad[0]}, which is no DataType")
        tensors = [value.tensor] if kind == "tensor" else list(value.list.tensor) if kind == "list" else []
        problems += [f"{where} holding a tensor TF cannot build: {why}" for t in tensors if (why := tensor_problem(t))]
    return problems


def unknown_ops(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """Ops neither TensorFlow (the op table graphkit ships) nor the graph's library defines: TF refuses
    the graph unless a custom-op library registers them, which graphkit cannot know -- so callers note them
    rather than refuse. Each as "Op (node)"."""
    from graphkit.io.functions import OpDefs

    index = as_index(graph)
    op_defs = OpDefs(index.graph_def)
    unknown = {op for op in set(index.ops.values()) if op and op_defs.get(op) is None}
    first: dict[str, str] = {}
    if unknown:
        for name, op in index.ops.items():
            if op in unknown and op not in first:
                first[op] = name
    return [f"{op} (node '{name}')" for op, name in first.items()]


def unknown_ops_note(graph: graph_pb2.GraphDef | GraphIndex) -> list[str]:
    """The note commands add to their report for :func:`unknown_ops` (none when every op is known)."""
    from graphkit.io.functions import SHIPPED_TF

    unknown = unknown_ops(graph)
    if not unknown:
        return []
    return [f"TensorFlow {SHIPPED_TF} defines no op {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; "
            "TF refuses the graph unless a custom-op library registers it (a damaged file shows this too)"]


def check_importable(graph: graph_pb2.GraphDef | GraphIndex, path: str | os.PathLike[str],
                     what: str = "the result") -> None:
    """Raise, naming ``path``, when :func:`validate` finds problems: every command that writes a graph calls
    this before writing, so nothing TF's importer refuses leaves graphkit with exit 0. ``path``: the
    output, or the input when the problems can only have come from there."""
    index = as_index(graph)
    problems = validate(index)
    graph_def = index.graph_def
    if graph_def is not None and graph_def.library.function:
        problems += library_problems(graph_def)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise GraphkitError(f"{what} would not import in TensorFlow: " + "; ".join(problems[:5]) + more, path)


def _port_problems(index: GraphIndex, ported: list[tuple[str, str, int]]) -> list[str]:
    """Inputs ``x:k`` past the outputs ``x``'s op has (its OpDef, with the node's attrs)."""
    if not ported:
        return []
    from graphkit.io.functions import OpDefs

    op_defs = OpDefs(index.graph_def)
    problems = []
    for reader, producer, port in ported:
        node = index.nodes[producer]
        try:
            count = sum(size for _, size in op_defs.output_args(node))
        except GraphkitError:
            continue  # a custom op, or attrs TF would fill in: TF itself decides
        if port >= count:
            problems.append(f"node '{reader}' reads '{producer}:{port}', but '{producer}' ({node.op}) has "
                            f"{count} output{'s' if count != 1 else ''}")
    return problems
