"""Human-readable rendering of inspect's data (colour only on a terminal: click strips it otherwise)."""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from graphkit.io.shapes import format_shape
from graphkit.text import human_bytes

Json = dict[str, Any]


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _head(text: str) -> str:
    return click.style(text, bold=True)


def summary_text(s: Json, limit: int = 20) -> str:
    """``inspect``'s summary: the header, inputs and outputs, signatures, variables, mismatches, ops."""
    lines = _header_lines(s) + _endpoint_lines(s, limit) + _variable_lines(s, limit) + _mismatch_lines(s)
    lines += _ops_lines(s, limit)
    return "\n".join(lines)


def _header_lines(s: Json) -> list[str]:
    kind = {"graphdef": "GraphDef", "metagraph": "MetaGraphDef", "savedmodel": "SavedModel",
            "checkpoint": "checkpoint"}[s["format"]]
    if s["format"] == "checkpoint" and "checkpoint" in s:
        kind = f"checkpoint V{s['checkpoint']['version']}" + (" + meta graph" if s.get("node_count") else "")
    if s.get("text"):
        kind += " (text)"
    facts = [kind]
    if s.get("node_count"):
        facts.append(f"{s['node_count']} nodes")
    if s.get("tensorflow_version"):
        facts.append(f"TF {s['tensorflow_version']}")
    if s.get("producer"):
        facts.append(f"producer {s['producer']}")
    if s.get("tags"):
        facts.append("tags " + ",".join(s["tags"]))
    lines = [f"{_head(s['path'])}  ({', '.join(facts)})"]
    weights = f"weights {human_bytes(s.get('weight_bytes'))}"
    if "checkpoint" in s:
        c = s["checkpoint"]
        data_files = len(c["files"]) - 1 if c["version"] == 2 else len(c["files"])
        weights += f" ({c['tensor_count']} checkpoint tensors in {data_files} data file(s))"
    if s.get("splat_constants"):
        splats = s["splat_constants"]
        expanded = sum(c["expanded_bytes"] for c in splats)
        weights += (f"; {len(splats)} splat constant(s) (one value filling a shape) expand to "
                    f"{human_bytes(expanded)} when loaded")
    lines.append(f"file size {human_bytes(s['file_bytes'])}; {weights}")
    if s.get("functions"):
        lines.append(f"function library: {s['functions']} functions")
    return lines


def _endpoint_lines(s: Json, limit: int) -> list[str]:
    lines: list[str] = []
    if s.get("node_count"):
        lines.append("")
        lines.append(_head("inputs"))
        rows = [[i["name"], i["dtype"], format_shape(i["shape"]), "(optional: has a default)" * bool(i.get("optional"))]
                for i in s["inputs"]]
        lines += _table(rows) or ["  (no placeholders)"]
        lines.append(_head("outputs") + " (likely, best first)")
        rows = [[o["name"], o["op"], o["reason"]] for o in s["outputs"][:limit]]
        lines += _table(rows) or ["  (none found)"]
        if len(s["outputs"]) > limit:
            lines.append(f"  ... {len(s['outputs']) - limit} more (--json lists all)")
    for sig in s.get("signatures", []):
        lines.append(_head(f"signature '{sig['key']}'") + f" ({sig['method']})")
        rows = [[d, t["key"], t["name"], t["dtype"], format_shape(t["shape"])]
                for d, group in (("in", sig["inputs"]), ("out", sig["outputs"])) for t in group]
        lines += _table(rows, "    ")
    return lines


def _variable_lines(s: Json, limit: int) -> list[str]:
    variables = s.get("variables", [])
    if not variables:
        return []
    shown = max(limit, 50)
    title = "tensors" if not s.get("node_count") else "variables"
    lines = ["", _head(title) + f" ({len(variables)}; as the checkpoint keys them)"]
    lines += _table([[v["name"], v["dtype"], format_shape(v["shape"]), human_bytes(v.get("bytes")), _where(v)]
                     for v in variables[:shown]])
    if len(variables) > shown:
        lines.append(f"  ... {len(variables) - shown} more (--json lists all)")
    return lines


def _where(v: Json) -> str:
    """Where a variable's value is, when it is not simply in both the graph and the checkpoint."""
    where = ""
    if v.get("in_graph") is False:
        where = "checkpoint only"
    elif v.get("in_checkpoint") is False:
        where = click.style("missing from checkpoint", fg="red")
    elif v.get("partitions"):
        where = f"{v['partitions']} partitions"
    elif v.get("partitioned"):
        where = "partitioned"
    if v.get("label") and v["label"] not in v["name"]:
        where = (f"{v['label']}; " + where) if where else v["label"]
    return where


def _mismatch_lines(s: Json) -> list[str]:
    mismatch = s.get("variable_mismatches")
    if not mismatch or not (mismatch["missing_in_checkpoint"] or mismatch["different"]):
        return []
    lines = [click.style("graph and checkpoint disagree:", fg="red", bold=True)]
    lines += [f"  {name}: in the graph, not in the checkpoint" for name in mismatch["missing_in_checkpoint"]]
    for d in mismatch["different"]:
        g, c = d["graph"], d["checkpoint"]
        lines.append(f"  {d['name']}: graph {g['dtype']} {format_shape(g['shape'])}, "
                     f"checkpoint {c['dtype']} {format_shape(c['shape'])}")
    return lines


def _ops_lines(s: Json, limit: int) -> list[str]:
    lines: list[str] = []
    if s.get("ops"):
        lines.append("")
        ops = s["ops"]
        lines.append(_head("ops") + f" ({len(ops)} types)")
        lines.append("  " + ", ".join(f"{op} {n}" for op, n in list(ops.items())[:limit])
                     + (f", ... {len(ops) - limit} more" if len(ops) > limit else ""))
    return lines


def nodes_text(nodes: list[Json]) -> str:
    rows = [[n["name"], n["op"], ", ".join(n["inputs"]), f"(in {n['function']})" if n.get("function") else ""]
            for n in nodes]
    return "\n".join(_table(rows, "")) if rows else "(no matching nodes)"


def functions_text(rows: list[Json]) -> str:
    if not rows:
        return "(no function library)"
    lines = []
    for r in rows:
        size = f"{r['nodes']} nodes" if r.get("nodes") is not None else "not in the library"
        mark = f", implements {r['implements']}" if r.get("implements") else ""
        if r["depth"] < 0:
            lines.append(f"{r['function']}  ({size}; called by nothing)")
        else:
            lines.append(f"{'  ' * r['depth']}{r['caller']} -> {r['function']}  ({size}{mark})")
    return "\n".join(lines)


def ops_text(ops: dict[str, int]) -> str:
    return "\n".join(_table([[op, str(n)] for op, n in ops.items()], ""))


def tensors_text(tensors: list[Json]) -> str:
    rows = [[t["name"], t["dtype"], format_shape(t["shape"]), human_bytes(t.get("bytes"))] for t in tensors]
    return "\n".join(_table(rows, ""))


def value_text(name: str, value: np.ndarray) -> str:
    with np.printoptions(threshold=200, edgeitems=4, linewidth=100):
        body = np.array2string(value, separator=", ")
    return f"{name}  {dtype_text(value)}  {format_shape(list(value.shape))}\n{body}"


def dtype_text(value: np.ndarray) -> str:
    """TF's name for a value's dtype: a string tensor is ``string``, not numpy's ``object``."""
    return "string" if value.dtype == object else str(value.dtype)


def foreign_text(s: Json) -> str:
    """An ONNX or TFLite model's summary."""
    kind = {"onnx": "ONNX", "tflite": "TFLite"}[s["format"]]
    facts = [kind, f"{s['node_count']} ops"]
    if s.get("opset"):
        facts.append("opset " + ", ".join(f"{o['domain']} {o['version']}" for o in s["opset"]))
    if s.get("producer"):
        facts.append(s["producer"])
    lines = [f"{_head(s['path'])}  ({', '.join(facts)})",
             f"file size {human_bytes(s['file_bytes'])}; weights {human_bytes(s.get('weight_bytes'))}", ""]
    for title, key in (("inputs", "inputs"), ("outputs", "outputs")):
        lines.append(_head(title))
        lines += _table([[t["name"], t["dtype"], format_shape(t["shape"])] for t in s[key]]) or ["  (none)"]
    lines += ["", _head("ops") + f" ({len(s['ops'])} types)",
              "  " + ", ".join(f"{op} {n}" for op, n in s["ops"].items())]
    return "\n".join(lines)


def target_text(path: str, target: str, missing: dict[str, dict]) -> str:
    """``inspect --target``: the op types the target cannot run, with why and up to five nodes each."""
    if not missing:
        return f"every op of {path} can run on {target}"
    lines = [f"{len(missing)} op type(s) of {path} cannot run on {target}:"]
    for op, info in missing.items():
        nodes = info["nodes"]
        shown = ", ".join(nodes[:5]) + (f" (+{len(nodes) - 5})" if len(nodes) > 5 else "")
        lines.append(f"  {op}: {info['note']} -- {shown}")
    return "\n".join(lines)
