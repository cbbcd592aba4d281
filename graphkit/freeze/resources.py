"""Frozen variables followed through the graph and its functions: what a resource handle reaches becomes
a value.

TF's ``_FunctionConverter`` idea (``convert_to_constants.py``), done as an analysis then a rewrite, without
its bugs (R1-R5 in the docs). From each frozen variable, the fact "this is now a constant of dtype D and
shape S" flows along data edges:

- into readers, which become value ops: ``ReadVariableOp`` -> ``Identity``, ``ResourceGather`` ->
  ``GatherV2`` (any ``batch_dims``), ``ResourceGatherNd`` -> ``GatherNd``, ``VariableShape`` -> ``Shape``,
  ``_ReadVariablesOp`` -> ``IdentityN``, ``VarIsInitializedOp`` -> ``Const(true)``; inside a function their
  consumers' and ``ret``'s ``node:value:i`` references follow the new output arg names;
- through pass-throughs (``Identity``, ``IdentityN``, ``Switch``, ``Merge``, ``Enter``...), whose type attr
  changes;
- into callers (``If``/``Case``/``While``/``(Stateful)PartitionedCall``/direct calls): caller input *i* is
  callee argument *i*, so the callee is analysed with those arguments frozen and, per set of frozen
  arguments, gets a specialized copy (``<name>_frozen``) with argument types, handle data, ``_handle_*``,
  ``_output_shapes``, ``_input_shapes`` and ``resource_arg_unique_id`` fixed; a callee output that forwards
  a frozen argument makes the caller's output frozen too; a ``While`` loop variable goes into ``cond`` and
  ``body`` alike, and ``body`` must return it unchanged;
- into state mutations (``AssignVariableOp``, ``AssignAddVariableOp``, batch norm's ``AssignNewValue``...),
  which are dropped with their control edges and ``control_ret`` entries, and listed. A mutation ordered
  before a read of the same variable is refused: the frozen value would differ from TF's.

Anything else that consumes a frozen handle is refused, naming the function and the node. Every touched
node loses its stale ``_output_shapes`` (TF's R3). Problems are collected, then raised together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphkit.errors import GraphkitError
from graphkit.io import dtypes
from graphkit.io.functions import CALLERS, FunctionLibrary, OpDefs, parse_function_ref
from graphkit.io.graph import GraphIndex, unique_name
from graphkit.io.ops import HANDLE_FORWARDING, VARIABLE_READERS, is_variable_mutation
from graphkit.io.passes import downstream, drop_dangling_colocations
from graphkit.io.tensors import from_numpy, shape_proto
from graphkit.proto import function_pb2, graph_pb2, node_def_pb2

Shape = tuple[int, ...] | None
Value = tuple[int, Shape]  # the frozen value's base dtype and shape
Site = tuple[str, int]  # (producer: a node, or an argument of the function; flat output port)

# what a reader's output arg is called before and after its rewrite (function-body references follow)
_RENAMED_OUTPUT = {"ReadVariableOp": ("value", "output"), "_ReadVariablesOp": ("values", "output"),
                   "VarIsInitializedOp": ("is_initialized", "output")}


@dataclass
class Plan:
    """What the analysis found in one body (the main graph, or one function with some arguments frozen)."""

    function: str | None  # None: the main graph
    sites: dict[Site, Value] = field(default_factory=dict)
    origin: dict[Site, str] = field(default_factory=dict)  # the variable (or argument) each site comes from
    readers: dict[str, dict[int, Value]] = field(default_factory=dict)  # node -> frozen input positions
    passes: dict[str, dict[int, Value]] = field(default_factory=dict)
    callers: dict[str, dict[int, Value]] = field(default_factory=dict)
    callees: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)  # caller -> (attr, pos, new name)
    outputs: dict[str, dict[int, Value]] = field(default_factory=dict)  # caller -> its outputs that became values
    mutations: dict[str, str] = field(default_factory=dict)  # node -> the variable it changed
    forwarded: dict[int, Value] = field(default_factory=dict)  # function output -> frozen value it returns


@dataclass
class Specialization:
    original: str
    name: str
    frozen: dict[int, Value]
    plan: Plan


@dataclass
class FreezeResult:
    """What :func:`freeze_resources_in_place` changed."""

    specialized: list[tuple[str, str]] = field(default_factory=list)  # (function, its frozen copy)
    dropped: list[str] = field(default_factory=list)  # mutations removed ("function/node" inside functions)


class _Body:
    """The main graph or one function body: its index and how its references name outputs."""

    def __init__(self, graph: graph_pb2.GraphDef | function_pb2.FunctionDef, op_defs: OpDefs,
                 library: FunctionLibrary) -> None:
        self.library = library
        self.function = graph if isinstance(graph, function_pb2.FunctionDef) else None
        self.index = GraphIndex(graph)
        self.op_defs = op_defs
        self.label = f"function '{self.function.signature.name}'" if self.function is not None else "the graph"

    def resolve(self, text: str) -> Site:
        """The (producer, flat port) an input string reads."""
        if self.function is None:
            node, _, port = text.partition(":")
            return node, int(port or 0)
        ref = parse_function_ref(text)
        if ref.out_arg is None:
            return ref.node, ref.index
        producer = self.index.nodes.get(ref.node)
        if producer is None:
            return ref.node, -1
        if producer.op in HANDLE_FORWARDING or producer.op in CALLERS or producer.op in self.library:
            return ref.node, self.op_defs.flat_port(producer, ref.out_arg, ref.index)
        return ref.node, -1  # not a producer of handles: never a site


class ResourceFreezer:
    """The analysis over a graph and its library, then the rewrite (see the module docstring)."""

    def __init__(self, graph_def: graph_pb2.GraphDef) -> None:
        self.graph_def = graph_def
        self.library = FunctionLibrary(graph_def)
        self.op_defs = OpDefs(graph_def)
        self.specs: dict[tuple[str, frozenset[tuple[int, Value]]], Specialization] = {}
        self.in_progress: set[str] = set()
        self.problems: list[str] = []
        self.taken = set(self.library.functions)

    def _body(self, graph: graph_pb2.GraphDef | function_pb2.FunctionDef) -> _Body:
        return _Body(graph, self.op_defs, self.library)

    # ---- analysis ---------------------------------------------------------------------------------

    def analyse(self, seeds: dict[str, Value]) -> Plan:
        """The main graph's plan, from its frozen variable nodes."""
        body = self._body(self.graph_def)
        plan = Plan(None)
        for name, value in seeds.items():
            plan.sites[(name, 0)] = value
            plan.origin[(name, 0)] = name
        self._propagate(body, plan)
        return plan

    def _specialize(self, name: str, frozen: dict[int, Value], where: str) -> Specialization | None:
        key = (name, frozenset(frozen.items()))
        if key in self.specs:
            return self.specs[key]
        if name not in self.library:
            self.problems.append(f"{where} calls function '{name}', which is not in the library")
            return None
        if name in self.in_progress:
            self.problems.append(f"function '{name}' calls itself with frozen variables; cannot specialize it")
            return None
        fdef = self.library.function(name)
        args = fdef.signature.input_arg
        for i in frozen:
            if i >= len(args):
                self.problems.append(f"{where} passes {i + 1} inputs to '{name}', which takes {len(args)}")
                return None
            if args[i].type_attr or args[i].type_list_attr or args[i].number_attr:
                self.problems.append(f"function '{name}' takes a frozen variable as polymorphic argument "
                                     f"'{args[i].name}'; cannot specialize it")
                return None
        self.in_progress.add(name)
        try:
            body = self._body(fdef)
            plan = Plan(name)
            for i, value in frozen.items():
                site = (args[i].name, 0)
                plan.sites[site] = value
                plan.origin[site] = args[i].name
            self._propagate(body, plan)
            for k, out in enumerate(fdef.signature.output_arg):
                text = fdef.ret.get(out.name)
                if text is not None and body.resolve(text) in plan.sites:
                    plan.forwarded[k] = plan.sites[body.resolve(text)]
        finally:
            self.in_progress.discard(name)
        spec = Specialization(name, unique_name(f"{name}_frozen", self.taken), dict(frozen), plan)
        self.specs[key] = spec
        return spec

    def _propagate(self, body: _Body, plan: Plan) -> None:
        """Follow the plan's sites to a fixed point: readers, pass-throughs, callers (specialized as their
        frozen inputs become known; their forwarded outputs are new sites), mutations."""
        index = body.index
        queue = list(plan.sites)
        while queue:
            while queue:
                self._visit(body, plan, queue.pop(), queue)
            for caller, frozen in list(plan.callers.items()):
                for k, value in self._call(body, plan, caller, frozen).items():
                    site = (caller, k)
                    plan.outputs.setdefault(caller, {})[k] = value
                    if site not in plan.sites:
                        plan.sites[site] = value
                        plan.origin[site] = f"{caller}:{k}"
                        queue.append(site)
        self._check_read_after_write(body, plan, index)

    def _visit(self, body: _Body, plan: Plan, site: Site, queue: list[Site]) -> None:
        index = body.index
        value = plan.sites[site]
        for consumer, pos in index.consumers.get(site[0], []):
            text = index.inputs[consumer][pos]
            if body.resolve(text) != site:
                continue
            node = index.nodes[consumer]
            op = node.op
            if op in VARIABLE_READERS:
                plan.readers.setdefault(consumer, {})[pos] = value
            elif op in HANDLE_FORWARDING:
                plan.passes.setdefault(consumer, {})[pos] = value
                for port in _pass_ports(node, pos):
                    out = (consumer, port)
                    if out not in plan.sites:
                        plan.sites[out] = value
                        plan.origin[out] = plan.origin[site]
                        queue.append(out)
            elif op in CALLERS or op in self.library:
                first = CALLERS.get(op, (0, ""))[0]
                if pos < first:
                    self._refuse(body, node, pos, plan.origin[site])
                else:
                    plan.callers.setdefault(consumer, {})[pos] = value
            elif is_variable_mutation(op) and pos == 0:
                plan.mutations[consumer] = plan.origin[site]
                if index.consumers.get(consumer):
                    user = index.consumers[consumer][0][0]
                    self.problems.append(f"in {body.label}, '{consumer}' ({op}) changes frozen variable "
                                         f"'{plan.origin[site]}' and its result is used by '{user}'")
            else:
                self._refuse(body, node, pos, plan.origin[site])

    def _refuse(self, body: _Body, node: node_def_pb2.NodeDef, pos: int, variable: str) -> None:
        self.problems.append(f"in {body.label}, node '{node.name}' ({node.op}) takes frozen variable "
                             f"'{variable}' as input {pos}, and graphkit does not know how to freeze that op; "
                             "keep the variable with --skip-variables")

    def _call(self, body: _Body, plan: Plan, caller: str, frozen: dict[int, Value]) -> dict[int, Value]:
        """Specialize the callees of ``caller`` for its frozen inputs; the caller outputs that become values."""
        node = body.index.nodes[caller]
        first = CALLERS.get(node.op, (0, ""))[0]
        args = {pos - first: value for pos, value in frozen.items()}
        where = f"node '{caller}' in {body.label}"
        calls = self.library.calls(node)
        specs = []
        for call in calls:
            spec = self._specialize(call.function, args, where)
            if spec is None:
                return {}
            specs.append((call, spec))
        plan.callees[caller] = [(call.attr, call.position, spec.name) for call, spec in specs]
        if node.op in ("While", "StatelessWhile"):
            body_spec = next((s for c, s in specs if c.attr == "body"), None)
            for i, value in args.items():
                if body_spec is None or body_spec.plan.forwarded.get(i) != value:
                    self.problems.append(f"in {body.label}, loop '{caller}' changes the handle of frozen variable "
                                         f"'{plan.origin.get(_input_site(body, node, i), '?')}' (its body does not "
                                         f"return argument {i} unchanged); cannot freeze it")
            return dict(args)
        forwarded = [spec.plan.forwarded for _, spec in specs]
        if not forwarded:
            return {}
        outputs: dict[int, Value] = {}
        for k in set().union(*forwarded):
            values = {f.get(k) for f in forwarded}
            if len(values) == 1:
                outputs[k] = values.pop()  # type: ignore[assignment]
            else:
                self.problems.append(f"in {body.label}, the branches of '{caller}' do not all return the same "
                                     f"frozen variable as output {k}; cannot freeze it")
        return outputs

    def _check_read_after_write(self, body: _Body, plan: Plan, index: GraphIndex) -> None:
        """A mutation of variable V ordered (data or control) before a read of V in the same body."""
        if not plan.mutations:
            return
        reads: dict[str, list[str]] = {}
        for reader in (*plan.readers, *plan.callers):
            for text in index.inputs[reader]:
                if not text.startswith("^") and body.resolve(text) in plan.origin:
                    reads.setdefault(plan.origin[body.resolve(text)], []).append(reader)
        for mutation, variable in plan.mutations.items():
            later = set(reads.get(variable, ())) & (downstream(index, [mutation]) - {mutation})
            if later:
                self.problems.append(f"in {body.label}, '{mutation}' changes frozen variable '{variable}' before "
                                     f"it is read ({', '.join(sorted(later))}); a frozen graph would read the old "
                                     "value")

    # ---- rewrite ----------------------------------------------------------------------------------

    def rewrite(self, plan: Plan, result: FreezeResult) -> None:
        """Apply the main graph's plan in place, and add every specialized function to the library."""
        self._apply(self._body(self.graph_def), plan, result)
        for spec in self._used(plan):
            fdef = function_pb2.FunctionDef()
            fdef.CopyFrom(self.library.function(spec.original))
            fdef.signature.name = spec.name
            _retype_signature(fdef, spec)
            body = self._body(fdef)
            self._apply(body, spec.plan, result, spec.original)
            drop_dangling_colocations(body.index)
            self.graph_def.library.function.append(fdef)
            self.op_defs.add(fdef.signature)
            result.specialized.append((spec.original, spec.name))

    def _used(self, plan: Plan) -> list[Specialization]:
        """The specializations the final plans call (a caller whose frozen inputs grew during the analysis
        left earlier ones behind), in the order first reached."""
        by_name = {spec.name: spec for spec in self.specs.values()}
        used: dict[str, Specialization] = {}
        stack = [name for calls in plan.callees.values() for _, _, name in calls]
        while stack:
            name = stack.pop(0)
            if name in used or name not in by_name:
                continue
            used[name] = by_name[name]
            stack += [n for calls in by_name[name].plan.callees.values() for _, _, n in calls]
        return list(used.values())

    def _apply(self, body: _Body, plan: Plan, result: FreezeResult, original: str | None = None) -> None:
        index = body.index
        touched: set[str] = set()
        for name, frozen in plan.readers.items():
            self._rewrite_reader(body, index.nodes[name], frozen)
            touched.add(name)
        for name, frozen in plan.passes.items():
            node = index.nodes[name]
            if node.op.startswith("Ref"):
                node.op = node.op[3:]
            for pos, (code, _) in frozen.items():
                if node.op == "IdentityN":
                    node.attr["T"].list.type[pos] = code  # type: ignore[call-overload]
                else:
                    node.attr["T"].type = code  # type: ignore[assignment]
            touched.add(name)
        for name, frozen in plan.callers.items():
            self._rewrite_caller(index.nodes[name], frozen, plan.callees.get(name, []), plan.outputs.get(name, {}))
            touched.add(name)
        for name in touched:
            index.nodes[name].attr.pop("_output_shapes", None)
        self._drop_mutations(body, plan, result, original)

    def _rewrite_reader(self, body: _Body, node: node_def_pb2.NodeDef, frozen: dict[int, Value]) -> None:
        op = node.op
        code = frozen[min(frozen)][0]
        if op in _RENAMED_OUTPUT and body.function is not None:
            _rename_output_arg(body, node.name, *_RENAMED_OUTPUT[op])
        if op == "ReadVariableOp":
            node.op = "Identity"
            node.attr["T"].type = code  # type: ignore[assignment]
            node.attr.pop("dtype", None)  # (a damaged file may lack it: the frozen value gives the type)
        elif op == "ResourceGather":
            self._gather(body, node, code)
        elif op == "ResourceGatherNd":
            node.op = "GatherNd"
            node.attr["Tparams"].type = code  # type: ignore[assignment]
            node.attr.pop("dtype", None)
        elif op == "VariableShape":
            node.op = "Shape"
            node.attr["T"].type = code  # type: ignore[assignment]
        elif op == "_ReadVariablesOp":
            count = sum(1 for t in node.input if not t.startswith("^"))
            if len(frozen) != count:
                self.problems.append(f"in {body.label}, '{node.name}' (_ReadVariablesOp) reads frozen and "
                                     "unfrozen variables together; freeze all of them or none")
                return
            node.op = "IdentityN"
            node.attr["T"].list.type[:] = [frozen[i][0] for i in range(count)]  # type: ignore[misc]
            for attr in ("dtypes", "N"):
                node.attr.pop(attr, None)
        elif op == "VarIsInitializedOp":
            controls = [t for t in node.input if t.startswith("^")]
            del node.input[:]
            node.input.extend(controls)
            node.op = "Const"
            node.attr["dtype"].type = dtypes.DT_BOOL  # type: ignore[assignment]
            node.attr["value"].tensor.CopyFrom(from_numpy(np.array(True)))

    def _gather(self, body: _Body, node: node_def_pb2.NodeDef, code: int) -> None:
        """ResourceGather(batch_dims=b) -> GatherV2(params, indices, axis=b, batch_dims=b): exact for any b."""
        batch_dims = int(node.attr["batch_dims"].i) if "batch_dims" in node.attr else 0
        index_type = node.attr["Tindices"].type
        axis = node_def_pb2.NodeDef(name=unique_name(f"{node.name}/axis", set(body.index.nodes)), op="Const")
        axis.attr["dtype"].type = index_type
        axis.attr["value"].tensor.CopyFrom(from_numpy(np.array(batch_dims, dtype=dtypes.to_numpy(index_type))))
        axis_ref = axis.name if body.function is None else f"{axis.name}:output:0"
        node.op = "GatherV2"
        node.input.insert(2, axis_ref)
        node.attr["Tparams"].type = code  # type: ignore[assignment]
        node.attr["Taxis"].type = index_type
        for attr in ("dtype", "validate_indices", *(("batch_dims",) if batch_dims == 0 else ())):
            node.attr.pop(attr, None)
        body.index.add([axis])

    def _rewrite_caller(self, node: node_def_pb2.NodeDef, frozen: dict[int, Value],
                        callees: list[tuple[str, int, str]], outputs: dict[int, Value]) -> None:
        first, type_attr = CALLERS.get(node.op, (0, ""))
        for pos, (code, shape) in frozen.items():
            if type_attr:
                node.attr[type_attr].list.type[pos - first] = code  # type: ignore[call-overload]
            if node.op in ("While", "StatelessWhile"):
                _set_shape(node, "output_shapes", pos, shape)
        if node.op not in ("While", "StatelessWhile"):
            for k, (code, shape) in outputs.items():
                if "Tout" in node.attr:
                    node.attr["Tout"].list.type[k] = code  # type: ignore[call-overload]
                _set_shape(node, "output_shapes", k, shape)
        if "_read_only_resource_inputs" in node.attr:
            kept = [i for i in node.attr["_read_only_resource_inputs"].list.i if i not in frozen]
            if kept:
                node.attr["_read_only_resource_inputs"].list.i[:] = kept
            else:
                del node.attr["_read_only_resource_inputs"]
        for attr, position, name in callees:
            if not attr:
                node.op = name
            elif position < 0:
                node.attr[attr].func.name = name
            else:
                node.attr[attr].list.func[position].name = name

    def _drop_mutations(self, body: _Body, plan: Plan, result: FreezeResult, original: str | None) -> None:
        if not plan.mutations:
            return
        gone = set(plan.mutations)
        container = body.function.node_def if body.function is not None else self.graph_def.node
        kept = [n for n in container if n.name not in gone]
        for node in kept:
            if any(t.startswith("^") and t[1:] in gone for t in node.input):
                inputs = [t for t in node.input if not (t.startswith("^") and t[1:] in gone)]
                del node.input[:]
                node.input.extend(inputs)
        del container[:]
        container.extend(kept)
        if body.function is not None:
            fdef = body.function
            names = [k for k, v in fdef.control_ret.items() if v in gone]
            for k in names:
                del fdef.control_ret[k]
            outputs = [c for c in fdef.signature.control_output if c not in names]
            del fdef.signature.control_output[:]
            fdef.signature.control_output.extend(outputs)
        prefix = f"{original}/" if original else ""
        result.dropped += [prefix + name for name in sorted(gone) if prefix + name not in result.dropped]


def freeze_resources_in_place(graph_def: graph_pb2.GraphDef, seeds: dict[str, Value],
                              resource_seeds: set[str]) -> FreezeResult:
    """Rewrite what the frozen variable nodes ``seeds`` (already Consts of their value) reach, in place.

    ``resource_seeds`` are the seeds that were resource handles (``VarHandleOp``): every consumer of theirs
    must be understood. The others are TF1 ref variables, whose consumers read values already; only their
    ref pass-throughs change. Raises GraphkitError listing every problem."""
    freezer = ResourceFreezer(graph_def)
    result = FreezeResult()
    strict = {k: v for k, v in seeds.items() if k in resource_seeds}
    plan = freezer.analyse(strict)
    _refs_as_values(graph_def, {k: v for k, v in seeds.items() if k not in resource_seeds}, plan)
    functions_with_variables = [name for name in freezer.library.reachable(graph_def.node)
                                if any(n.op == "VarHandleOp" for n in freezer.library.function(name).node_def)]
    freezer.problems += [f"function '{name}' creates a variable inside its body (VarHandleOp); graphkit freezes "
                         "variables of the main graph only" for name in functions_with_variables]
    if freezer.problems:
        raise GraphkitError("cannot freeze: " + "; ".join(dict.fromkeys(freezer.problems)))
    freezer.rewrite(plan, result)
    if freezer.problems:
        raise GraphkitError("cannot freeze: " + "; ".join(dict.fromkeys(freezer.problems)))
    return result


def _refs_as_values(graph_def: graph_pb2.GraphDef, seeds: dict[str, Value], plan: Plan) -> None:
    """TF1 ref variables: their Ref*/Identity/Switch/Merge chains in the main graph take the value's type
    (a ref's other consumers read it as a value already). Added to ``plan.passes``."""
    index = GraphIndex(graph_def)
    queue = list(seeds.items())
    seen: set[str] = set()
    while queue:
        name, value = queue.pop()
        for user, pos in index.consumers.get(name, []):
            node = index.nodes[user]
            if node.op in HANDLE_FORWARDING and user not in plan.passes:
                plan.passes.setdefault(user, {})[pos] = value
                if user not in seen:
                    seen.add(user)
                    queue.append((user, value))
            elif node.op in VARIABLE_READERS and user not in plan.readers:
                plan.readers.setdefault(user, {})[pos] = value


def _pass_ports(node: node_def_pb2.NodeDef, pos: int) -> list[int]:
    """The outputs of a pass-through that carry its input ``pos``."""
    if node.op == "IdentityN":
        return [pos]
    if node.op in ("Switch", "RefSwitch"):
        return [0, 1] if pos == 0 else []
    if node.op == "_SwitchN":
        return list(range(int(node.attr["num_outs"].i))) if pos == 0 else []
    return [0]


def _input_site(body: _Body, node: node_def_pb2.NodeDef, i: int) -> Site:
    data = [t for t in node.input if not t.startswith("^")]
    return body.resolve(data[i]) if i < len(data) else ("", -1)


def _rename_output_arg(body: _Body, name: str, old: str, new: str) -> None:
    """Inside a function: ``name:old:i`` -> ``name:new:i`` in every node input and ``ret`` value."""
    assert body.function is not None
    before, after = f"{name}:{old}:", f"{name}:{new}:"
    changed = []
    for node in body.function.node_def:
        if any(t.startswith(before) for t in node.input):
            inputs = [after + t[len(before):] if t.startswith(before) else t for t in node.input]
            del node.input[:]
            node.input.extend(inputs)
            changed.append(node.name)
    for key, text in list(body.function.ret.items()):
        if text.startswith(before):
            body.function.ret[key] = after + text[len(before):]
    body.index.refresh(changed)


def _set_shape(node: node_def_pb2.NodeDef, attr: str, i: int, shape: Shape) -> None:
    if attr in node.attr and i < len(node.attr[attr].list.shape):
        node.attr[attr].list.shape[i].CopyFrom(shape_proto(shape))


def _retype_signature(fdef: function_pb2.FunctionDef, spec: Specialization) -> None:
    """A specialized copy's argument and output metadata for its frozen arguments (TF leaves handle data
    and the ``_handle_*`` attrs behind, which function_def_to_graph then reads as shape [])."""
    args = fdef.signature.input_arg
    for i, (code, shape) in spec.frozen.items():
        args[i].type = code  # type: ignore[assignment]
        args[i].ClearField("handle_data")
        attrs = fdef.arg_attr[i].attr
        for key in ("_handle_dtypes", "_handle_shapes"):
            attrs.pop(key, None)
        attrs["_output_shapes"].list.ClearField("shape")
        attrs["_output_shapes"].list.shape.add().CopyFrom(shape_proto(shape))
        if "_input_shapes" in fdef.attr and i < len(fdef.attr["_input_shapes"].list.shape):
            fdef.attr["_input_shapes"].list.shape[i].CopyFrom(shape_proto(shape))
        if i in fdef.resource_arg_unique_id:
            del fdef.resource_arg_unique_id[i]
    for k, (code, _) in spec.plan.forwarded.items():
        fdef.signature.output_arg[k].type = code  # type: ignore[assignment]
