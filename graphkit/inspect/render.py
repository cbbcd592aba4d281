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
    lines: list[str] = []
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
    lines.append(f"{_head(s['path'])}  ({', '.join(facts)})")
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

    variables = s.get("variables", [])
    if variables:
        lines.append("")
        title = "tensors" if not s.get("node_count") else "variables"
        lines.append(_head(title) + f" ({len(variables)}; as the checkpoint keys them)")
        rows = []
        for v in variables[: max(limit, 50)]:
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
            rows.append([v["name"], v["dtype"], format_shape(v["shape"]), human_bytes(v.get("bytes")), where])
        lines += _table(rows)
        if len(variables) > max(limit, 50):
            lines.append(f"  ... {len(variables) - max(limit, 50)} more (--json lists all)")
    mismatch = s.get("variable_mismatches")
    if mismatch and (mismatch["missing_in_checkpoint"] or mismatch["different"]):
        lines.append(click.style("graph and checkpoint disagree:", fg="red", bold=True))
        for name in mismatch["missing_in_checkpoint"]:
            lines.append(f"  {name}: in the graph, not in the checkpoint")
        for d in mismatch["different"]:
            g, c = d["graph"], d["checkpoint"]
            lines.append(f"  {d['name']}: graph {g['dtype']} {format_shape(g['shape'])}, "
                         f"checkpoint {c['dtype']} {format_shape(c['shape'])}")
    if s.get("ops"):
        lines.append("")
        ops = s["ops"]
        lines.append(_head("ops") + f" ({len(ops)} types)")
        lines.append("  " + ", ".join(f"{op} {n}" for op, n in list(ops.items())[:limit])
                     + (f", ... {len(ops) - limit} more" if len(ops) > limit else ""))
    return "\n".join(lines)


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
