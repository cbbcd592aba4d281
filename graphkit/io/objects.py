"""The object graph of a TF2 object-based checkpoint (``_CHECKPOINTABLE_OBJECT_GRAPH``, a
TrackableObjectGraph): which objects hold which tensors, and an edited copy that stays consistent with an
edited set of keys, so ``tf.train.Checkpoint.restore`` still works.

TF restores by walking this graph from the root (node 0) along ``children`` by local name, matching the
Python objects, and reads each object's ``attributes[].checkpoint_key`` (``python/checkpoint/restore.py``);
slot variables are found through their optimizer's ``slot_variables`` references. The keys themselves are
the first path to each object, names escaped (``/`` -> ``.S``, ``.`` -> ``..``;
``python/trackable/trackable_utils.py`` ``escape_local_name``, ``object_path_to_string``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from graphkit.errors import GraphkitError
from graphkit.proto import trackable_object_graph_pb2

ObjectGraph = trackable_object_graph_pb2.TrackableObjectGraph

# Keras 3's optimizers (keras/src/optimizers/base_optimizer.py) track their state as plain children -- no
# slot references -- and always have these two:
_KERAS3_OPTIMIZER_CHILDREN = frozenset({"_iterations", "_trainable_variables"})


def escape(name: str) -> str:
    """A local name as it appears in a checkpoint key (trackable_utils.py ``escape_local_name``)."""
    return name.replace(".", "..").replace("/", ".S")


def optimizer_nodes(graph: ObjectGraph) -> set[int]:
    """The optimizers' objects: those that own slot variables (``slot_variables``: tf.keras OptimizerV2,
    TF1 optimizers tracked by a Checkpoint), and Keras 3 optimizers (children ``_iterations`` and
    ``_trainable_variables``)."""
    owners = set()
    for i, node in enumerate(graph.nodes):
        names = {c.local_name for c in node.children}
        if node.slot_variables or names >= _KERAS3_OPTIMIZER_CHILDREN:
            owners.add(i)
    return owners


def optimizer_keys(graph: ObjectGraph) -> list[str]:
    """The checkpoint keys of optimizer state: every object reachable only through an optimizer (its
    iteration counter, hyper-parameters, Keras 3's momentums), and the slot variables. A model variable
    an optimizer also lists (Keras 3's ``_trainable_variables``) is not optimizer state: the model reaches
    it without passing through the optimizer."""
    owners = optimizer_nodes(graph)
    free = _reachable(graph, [0], avoid=owners)
    owned = _reachable(graph, sorted(owners)) - free
    for owner in owners:
        owned.update(s.slot_variable_node_id for s in graph.nodes[owner].slot_variables)
    return [a.checkpoint_key for i in sorted(owned - free) for a in graph.nodes[i].attributes]


@dataclass
class EditedObjects:
    graph: ObjectGraph
    keys: dict[str, str]  # old key -> new key, for every key kept


def edit_object_graph(graph: ObjectGraph, kept: Iterable[str], *, drop_nodes: Iterable[int] = (),
                      strip_prefix: str | None = None, add_prefix: str | None = None) -> EditedObjects:
    """A copy of ``graph`` holding only the attributes whose keys are in ``kept``, without the objects in
    ``drop_nodes`` (and what only they reach), optionally re-rooted at the object ``strip_prefix`` names
    (``model/``: its keys lose the prefix) or placed under new objects ``add_prefix`` names (``net/``).
    Node ids are renumbered; references, slot references and ``has_checkpoint_values`` follow. When objects
    move or go, keys are made again as TF makes them (:func:`_rekey`), so the result reads as if TF had
    saved these objects. A kept key whose object is no longer reachable from the root is an error."""
    kept_keys = set(kept)
    dropped = set(drop_nodes)
    root = 0
    if strip_prefix:
        root = _walk(graph, _components(strip_prefix, "--strip-prefix"))
    live = _reachable(graph, [root], avoid=dropped)
    for owner in sorted(live):
        for ref in graph.nodes[owner].slot_variables:
            if ref.original_variable_node_id in live and ref.slot_variable_node_id not in dropped:
                live.add(ref.slot_variable_node_id)
    stranded = sorted(a.checkpoint_key for i, node in enumerate(graph.nodes) if i not in live
                      for a in node.attributes if a.checkpoint_key in kept_keys)
    if stranded:
        raise GraphkitError(f"{len(stranded)} kept keys belong to objects that would no longer be reachable "
                            f"from the checkpoint's root ({', '.join(stranded[:3])}); drop them too "
                            "(--drop, or --strip-optimizer for an optimizer's)")
    wrappers = _components(add_prefix, "--add-prefix") if add_prefix else []
    order = [root] + sorted(live - {root})
    new_id = {old: len(wrappers) + i for i, old in enumerate(order)}
    out = ObjectGraph()
    for i, name in enumerate(wrappers):
        out.nodes.add().children.add(node_id=i + 1, local_name=name)
    for old in order:
        src = graph.nodes[old]
        node = out.nodes.add()
        for child in src.children:
            if child.node_id in new_id:
                node.children.add(node_id=new_id[child.node_id], local_name=child.local_name)
        for attr in src.attributes:
            if attr.checkpoint_key in kept_keys:
                node.attributes.add(name=attr.name, full_name=attr.full_name, checkpoint_key=attr.checkpoint_key)
        for ref in src.slot_variables:
            if ref.original_variable_node_id in new_id and ref.slot_variable_node_id in new_id:
                node.slot_variables.add(original_variable_node_id=new_id[ref.original_variable_node_id],
                                        slot_name=ref.slot_name,
                                        slot_variable_node_id=new_id[ref.slot_variable_node_id])
        if src.HasField("registered_saver"):
            node.registered_saver.CopyFrom(src.registered_saver)
    keys = _rekey(graph, out, new_id) if wrappers or strip_prefix or dropped else {
        a.checkpoint_key: a.checkpoint_key for n in out.nodes for a in n.attributes}
    _fill_has_values(out, any(n.HasField("has_checkpoint_values") for n in graph.nodes))
    return EditedObjects(out, keys)


def _rekey(old: ObjectGraph, new: ObjectGraph, new_id: dict[int, int]) -> dict[str, str]:
    """Re-key ``new``'s attributes (in place) as TF would key them: an object's path is its first path in a
    breadth-first walk of children from the root, a slot variable's its variable's path, ``.OPTIMIZER_SLOT``,
    its optimizer's path and the slot name (``trackable_utils.checkpoint_key``, ``slot_variable_key``). A
    key keeps what follows its object's path (``/.ATTRIBUTES/VARIABLE_VALUE``, a table's ``-keys``...);
    one that does not start with its object's old path is left as it is. Returns old key -> new key."""
    before, after = _paths(old), _paths(new)
    by_new = {n: o for o, n in new_id.items()}
    keys = {}
    for i, node in enumerate(new.nodes):
        was, now = before.get(by_new.get(i, -1)), after.get(i)
        for attr in node.attributes:
            key = attr.checkpoint_key
            if was is not None and now is not None and key.startswith(was) and key[len(was):len(was) + 1] in "/":
                key = now + key[len(was):]
            keys[attr.checkpoint_key] = key
            attr.checkpoint_key = key
    return keys


def _paths(graph: ObjectGraph) -> dict[int, str]:
    """Each object's path as keys spell it (slot variables: their whole slot key)."""
    paths: dict[int, str] = {0: ""}
    queue = deque([0])
    while queue:
        current = queue.popleft()
        for child in graph.nodes[current].children:
            if child.node_id not in paths and 0 <= child.node_id < len(graph.nodes):
                paths[child.node_id] = (paths[current] + "/" if paths[current] else "") + escape(child.local_name)
                queue.append(child.node_id)
    for owner, node in enumerate(graph.nodes):
        for ref in node.slot_variables:
            if owner in paths and ref.original_variable_node_id in paths:
                paths.setdefault(ref.slot_variable_node_id, f"{paths[ref.original_variable_node_id]}/"
                                 f".OPTIMIZER_SLOT/{paths[owner]}/{escape(ref.slot_name)}")
    return paths


def _components(prefix: str, option: str) -> list[str]:
    if not prefix.endswith("/") or any(not part for part in prefix[:-1].split("/")):
        raise GraphkitError(f"{option} {prefix!r}: in a TF2 checkpoint a prefix is a path of object names "
                            "ending in '/' (like model/)")
    parts = prefix[:-1].split("/")
    if any("." in part for part in parts):
        raise GraphkitError(f"{option} {prefix!r}: object names with '.' are escaped in keys; give a prefix "
                            "without '.'")
    return parts


def _walk(graph: ObjectGraph, path: list[str]) -> int:
    node = 0
    for depth, name in enumerate(path):
        found = [c.node_id for c in graph.nodes[node].children if escape(c.local_name) == name]
        if not found:
            have = ", ".join(sorted(c.local_name for c in graph.nodes[node].children)) or "none"
            raise GraphkitError(f"the checkpoint has no object '{'/'.join(path[:depth + 1])}' (children there: "
                                f"{have})")
        node = found[0]
    return node


def _reachable(graph: ObjectGraph, starts: list[int], avoid: set[int] | None = None) -> set[int]:
    avoid = avoid or set()
    seen = {s for s in starts if s not in avoid} if avoid else set(starts)
    queue = deque(seen)
    while queue:
        for child in graph.nodes[queue.popleft()].children:
            if child.node_id not in seen and child.node_id not in avoid and 0 <= child.node_id < len(graph.nodes):
                seen.add(child.node_id)
                queue.append(child.node_id)
    return seen


def _fill_has_values(graph: ObjectGraph, present: bool) -> None:
    """``has_checkpoint_values`` as TF computes it (``checkpoint/util.py`` add_checkpoint_values_check): an
    object with attributes, slot references or a registered saver has values, and so has every object
    that reaches it through children. TF skips subtrees without values on restore."""
    if not present:
        return
    parents: dict[int, set[int]] = {}
    marked = set()
    for i, node in enumerate(graph.nodes):
        if node.attributes or node.slot_variables or node.HasField("registered_saver"):
            marked.add(i)
        for child in node.children:
            parents.setdefault(child.node_id, set()).add(i)
    queue = deque(marked)
    while queue:
        for parent in parents.pop(queue.popleft(), ()):
            if parent not in marked:
                marked.add(parent)
                queue.append(parent)
    for i, node in enumerate(graph.nodes):
        node.has_checkpoint_values.value = i in marked
