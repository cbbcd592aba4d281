"""The house's layers (docs/house.md), enforced: what ruff's banned-api rule cannot say. Parsing protobuf
wire or text happens in graphkit/io (TF's own protos in graphkit/runtime); the packages import one another
without cycles, io importing none of them."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "graphkit"
PARSERS = {"FromString", "ParseFromString", "MergeFromString"}
TEXT_PARSERS = {"Parse", "Merge"}  # text_format.Parse / Merge


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT.parent)): ast.parse(p.read_text(), str(p))
            for p in sorted(ROOT.rglob("*.py")) if "proto" not in p.relative_to(ROOT).parts[:1]}


def test_protobuf_is_parsed_in_io_only():
    found = []
    for name, tree in _modules().items():
        if name.startswith(("graphkit/io/", "graphkit/runtime/")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and (
                    node.attr in PARSERS or node.attr in TEXT_PARSERS and isinstance(node.value, ast.Name)
                    and node.value.id == "text_format"):
                found.append(f"{name}:{node.lineno} {node.attr}")
    assert not found, "protobuf parsing outside graphkit/io: " + ", ".join(found)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_packages_import_one_another_without_cycles():
    edges: dict[str, set[str]] = defaultdict(set)
    for name, tree in _modules().items():
        if name.endswith("/cli.py") or name == "graphkit/cli.py":
            continue  # the commands are the top layer: they may import any package
        here = name.split("/")[1].removesuffix(".py")
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("graphkit."):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("graphkit.")]
            for target in targets:
                there = _package(target)
                if there and there != here and there != "proto":
                    edges[here].add(there)
    assert not (edges["io"] - {"errors"}), f"graphkit/io imports {sorted(edges['io'])}"

    def cycle_from(start: str, at: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(edges[at]):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path:
                found = cycle_from(start, nxt, [*path, nxt])
                if found:
                    return found
        return None

    cycles = [c for c in (cycle_from(p, p, [p]) for p in sorted(edges)) if c]
    assert not cycles, "import cycles between packages: " + "; ".join(" -> ".join(c) for c in cycles)


def test_only_the_commands_import_the_cli_helpers():
    """Library code returns results and raises GraphkitError; click, option parsing and printing live in
    the ``cli.py`` modules (and ``cliutil``, which they share). inspect's text rendering may colour with
    click.style, and nothing more."""
    found = []
    for name, tree in _modules().items():
        if name.endswith("/cli.py") or name in ("graphkit/cli.py", "graphkit/cliutil.py", "graphkit/__main__.py"):
            continue
        banned = {"graphkit.cliutil"} | ({"click"} if name != "graphkit/inspect/render.py" else set())
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if module in banned or banned.intersection(names):
                found.append(f"{name}:{node.lineno}")
    assert not found, "CLI helpers imported by library code: " + ", ".join(found)
