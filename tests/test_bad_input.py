"""The bad-input corpus (issue 13): a seeded generator damages the shipped fixtures every way a user's files
get damaged -- truncations, bit flips, overwritten runs, wrong formats, broken text, semantically broken
GraphDefs, checkpoint index/data/state edits, Caffe prototxt/caffemodel edits, odd paths and output paths --
and every TF-free command runs on each variant, in this process. What each run must show is the README's
promise list ("On bad input"):

- exit 0, or exit 1 with one line ``error: ...`` naming a file of the case; never an internal error, a
  traceback, a usage error (2) or a hang;
- on exit 1 nothing is left in the output folder; on exit 0 what was written loads, validates, and imports
  in TensorFlow (when TensorFlow is installed);
- the input files are byte-for-byte unchanged;
- memory stays bounded (the largest variants describe multi-GB tensors in a few bytes).

The corpus is generated, never committed: ``SEED`` fixes it; ``GRAPHKIT_CORPUS_SEED`` picks another one to
explore (a failure prints the case and the command, enough to rebuild it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import CAFFE_NET, FIXTURES, caffe_model, fixture_checkpoint

from graphkit.cli import cli
from graphkit.io import load, validate
from graphkit.io.tensors import from_numpy
from graphkit.proto import graph_pb2

SEED = int(os.environ.get("GRAPHKIT_CORPUS_SEED", "13"))
HANG_SECONDS = 30
MEMORY_GROWTH_LIMIT = 1 << 30  # the whole corpus, over what the process held before it


@dataclass
class Case:
    """One damaged input: the files under ``root`` are the case's (hashed before and after); ``model`` is
    what the commands are given; ``commands`` build each command line from the output folder."""

    name: str
    root: Path
    model: Path
    commands: list[Callable[[Path], list[str]]]
    extra: list[Path] = field(default_factory=list)  # more arguments before OUT (caffe2tf's caffemodel)


# -- byte damage ----------------------------------------------------------------------------------------------

def byte_damage(data: bytes, rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """``count`` damaged copies of ``data``: cuts, bit flips, overwritten runs, insertions, appended junk."""
    yield "empty", b""
    for i in range(count):
        kind = ("cut", "flip", "overwrite", "insert", "append")[i % 5]
        out = bytearray(data)
        if kind == "cut":
            out = out[:rng.randrange(1, len(data))]
        elif kind == "flip":
            for _ in range(rng.randint(1, 3)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind == "overwrite":
            at = rng.randrange(len(out))
            out[at:at + 8] = bytes(rng.randrange(256) for _ in range(8))
        elif kind == "insert":
            at = rng.randrange(len(out))
            out[at:at] = bytes([rng.randrange(256)])
        else:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        yield f"{kind}{i}", bytes(out)


def text_damage(text: str, rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """Broken text: cut, a character dropped or doubled, a brace or quote removed, a non-UTF-8 byte."""
    yield "empty", b""
    yield "deep", ("node { attr { key: \"a\" value { list { " * 3000 + "}" * 9000).encode()
    yield "not-utf8", text.encode()[:40] + b"\xff\xfe" + text.encode()[40:]
    for i in range(count):
        kind = ("cut", "drop", "double", "brace", "quote")[i % 5]
        at = rng.randrange(len(text))
        if kind == "cut":
            out = text[:at]
        elif kind == "drop":
            out = text[:at] + text[at + 1:]
        elif kind == "double":
            out = text[:at] + text[at] + text[at:]
        else:
            marks = [j for j, c in enumerate(text) if c in ("{}" if kind == "brace" else '"')]
            j = rng.choice(marks)
            out = text[:j] + text[j + 1:]
        yield f"{kind}{i}", out.encode()


# -- semantic damage of a GraphDef ------------------------------------------------------------------------------

def _sigmoid() -> graph_pb2.GraphDef:
    return graph_pb2.GraphDef.FromString((FIXTURES / "frozen" / "sigmoid.pb").read_bytes())


def _node(gd: graph_pb2.GraphDef, name: str):
    return next(n for n in gd.node if n.name == name)


def semantic_graphs() -> Iterator[tuple[str, graph_pb2.GraphDef]]:
    """Valid protobuf that TF's importer refuses, and a few it accepts that are hard on memory."""
    def edit(fn: Callable[[graph_pb2.GraphDef], object]) -> graph_pb2.GraphDef:
        gd = _sigmoid()
        fn(gd)
        return gd

    yield "dangling", edit(lambda g: _node(g, "y").input.__setitem__(0, "nope"))
    yield "duplicate", edit(lambda g: g.node.add().CopyFrom(_node(g, "y")))
    yield "cycle", edit(lambda g: _node(g, "add").input.append("y"))
    for i, ref in enumerate(("x:3", "x:abc", "x:-1", "x:0:1", "^", "x:")):
        yield f"ref{i}", edit(lambda g, ref=ref: _node(g, "MatMul").input.__setitem__(0, ref))
    yield "dtype-enum", edit(lambda g: _node(g, "y").attr["T"].__setattr__("type", 999))
    yield "dtype-list-enum", edit(lambda g: _node(g, "x").attr["_tl"].list.type.extend([1, 777]))
    yield "no-op", edit(lambda g: _node(g, "y").__setattr__("op", ""))
    yield "bad-name", edit(lambda g: _node(g, "y").__setattr__("name", "bad name!"))
    yield "colocation", edit(lambda g: _node(g, "y").attr["_class"].list.s.append(b"loc:@nope"))
    yield "no-dtype", edit(lambda g: _node(g, "x").attr.pop("dtype"))

    def w_shape(dims: list[int], content: bytes | None = None) -> Callable[[graph_pb2.GraphDef], None]:
        def fn(g: graph_pb2.GraphDef) -> None:
            tensor = _node(g, "w").attr["value"].tensor
            del tensor.tensor_shape.dim[:]
            for d in dims:
                tensor.tensor_shape.dim.add().size = d
            if content is not None:
                tensor.tensor_content = content
        return fn

    yield "huge-shape", edit(w_shape([3, 1 << 40]))
    yield "square-huge-shape", edit(w_shape([1 << 20, 1 << 20]))
    yield "negative-dim", edit(w_shape([-3, 2]))
    yield "int64-overflow", edit(w_shape([1 << 62, 1 << 62]))
    yield "content-short", edit(w_shape([3, 2], b"\0" * 5))
    yield "dtype-mismatch", edit(lambda g: _node(g, "w").attr["value"].tensor.__setattr__("dtype", 3))
    for name, shape in (("splat", [8, 1 << 26]), ("splat-3d", [3, 1 << 27])):
        gd = graph_pb2.GraphDef()
        gd.versions.producer = 1700
        x = gd.node.add(name="x", op="Placeholder")
        x.attr["dtype"].type = 1
        x.attr["shape"].shape.dim.add().size = -1
        c = gd.node.add(name="c", op="Const")
        c.attr["dtype"].type = 1
        tensor = from_numpy(np.zeros(0, np.float32))
        del tensor.tensor_shape.dim[:]
        for d in shape:
            tensor.tensor_shape.dim.add().size = d
        tensor.float_val.append(0.5)
        c.attr["value"].tensor.CopyFrom(tensor)
        gd.node.add(name="y", op="Identity", input=["c"]).attr["T"].type = 1
        gd.node.add(name="z", op="Identity", input=["x"]).attr["T"].type = 1
        yield name, gd


# -- Caffe --------------------------------------------------------------------------------------------------------

CAFFE_EDITS = {  # what Caffe's own checks refuse, as edits of CAFFE_NET
    "conv-stride-0": ("kernel_size: 3 }", "kernel_size: 3 stride: 0 }"),
    "conv-group-0": ("kernel_size: 3 }", "kernel_size: 3 group: 0 }"),
    "conv-dilation-0": ("kernel_size: 3 }", "kernel_size: 3 dilation: 0 }"),
    "conv-kernel-too-big": ("kernel_size: 3 }", "kernel_size: 30 }"),
    "conv-no-outputs": ("num_output: 4", "num_output: 0"),
    "pool-stride-0": ("stride: 2", "stride: 0"),
    "three-input-dims": ("input_dim: 8\ninput_dim: 8", "input_dim: 8"),
    "no-top": ('top: "pool" ', ""),
    "dangling-bottom": ('bottom: "pool"', 'bottom: "nope"'),
    "concat-axis": ('top: "cat" }', 'top: "cat" concat_param { axis: 5 } }'),
    "softmax-axis": ('top: "prob" }', 'top: "prob" softmax_param { axis: 9 } }'),
    "flatten-axis": ('top: "flat" }', 'top: "flat" flatten_param { axis: -9 } }'),
    "unknown-layer": ('type: "ReLU"', 'type: "NoSuchLayer"'),
    "not-utf8": ('name: "t"', 'name: "t\udcff"'),
}


# -- the corpus ---------------------------------------------------------------------------------------------------

def _graph_commands(suffix: str) -> list[Callable[[Path], list[str]]]:
    return [
        lambda o: ["inspect", "{m}"],
        lambda o: ["inspect", "{m}", "--json", "--nodes"],
        lambda o: ["inspect", "{m}", "--tensor", "w"],
        lambda o: ["prune", "{m}", str(o / f"p{suffix}"), "--outputs", "y"],
        lambda o: ["prune", "{m}", str(o / "p.pb")],
        lambda o: ["remap-input", "{m}", str(o / "r.pb"), "--placeholder", "MatMul:0=feat:float32[?,2]",
                   "--outputs", "y"],
        lambda o: ["set-batch", "{m}", str(o / f"s{suffix}")],
        lambda o: ["rename", "{m}", str(o / "n.pb"), "--add-prefix", "p/"],
        lambda o: ["freeze", "{m}", str(o / "f.pb"), "--outputs", "y"],
        lambda o: ["tensorboard", "{m}", "--logdir", str(o / "logs"), "--run", "r"],
        lambda o: ["optimize", "{m}", str(o / f"o{suffix}"), "--outputs", "y"],
        lambda o: ["diff", "{m}", "{m}"],  # the same file: equal (exit 0) or the one error line
        lambda o: ["optimize", "{m}", str(o / "o.pb"), "--fold-defaults", "--target", "opencv"],
    ]


def _checkpoint_commands(tensor: str = "dense1/weights") -> list[Callable[[Path], list[str]]]:
    return [
        lambda o: ["inspect", "{m}"],
        lambda o: ["inspect", "{m}", "--tensors", "--json"],
        lambda o: ["inspect", "{m}", "--functions"],
        lambda o: ["inspect", "{m}", "--tensor", tensor],
        lambda o: ["freeze", "{m}", str(o / "f.pb"), "--outputs", "output"],
        lambda o: ["prune", "{m}", str(o / "p.pb"), "--outputs", "output"],
        lambda o: ["edit-checkpoint", "{m}", str(o / "e"), "--add-prefix", "p/"],
        lambda o: ["diff", "{m}", "{m}"],
        lambda o: ["edit-checkpoint", "{m}", str(o / "g"), "--strip-optimizer", "--graph", "{m}.meta"],
        lambda o: ["edit-checkpoint", "{m}", str(o / "m"), "--keep", tensor, "--add-prefix", "p/", "--cast",
                   "float16", "--merge", "{m}"],
    ]


def _run_command() -> list[Callable[[Path], list[str]]]:
    """``run`` (TensorFlow): its refusal of a graph must be one line too."""
    return [lambda o: ["run", "{m}", "--batch", "2", "-q"]]


def _saved_model_commands() -> list[Callable[[Path], list[str]]]:
    return [
        lambda o: ["inspect", "{m}"],
        lambda o: ["freeze", "{m}", str(o / "f.pb")],
        lambda o: ["prune", "{m}", str(o / "p.pb")],
        lambda o: ["rename", "{m}", str(o / "sm"), "--add-prefix", "p/"],
    ]


def _caffe_commands() -> list[Callable[[Path], list[str]]]:
    return [
        lambda o: ["caffe2tf", "{m}", "{x0}", str(o / "c.pb")],
        lambda o: ["diff", "{m}", "{m}"],
        lambda o: ["inspect", "{m}", "--caffemodel", "{x0}"],
    ]


def build_corpus(work: Path) -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []

    def case(name: str, files: dict[str, bytes | Path], model: str, commands, extra: tuple[str, ...] = ()) -> None:
        root = work / name
        root.mkdir(parents=True)
        for rel, content in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
        cases.append(Case(name, root, root / model, commands, [root / e for e in extra]))

    graph_bytes = (FIXTURES / "frozen" / "sigmoid.pb").read_bytes()
    for label, data in byte_damage(graph_bytes, rng, 60):
        case(f"graph-{label}", {"g.pb": data}, "g.pb", _graph_commands(".pb"))
    text = (FIXTURES / "frozen" / "sigmoid.pbtxt").read_text()
    for label, data in text_damage(text, rng, 25):
        case(f"text-{label}", {"g.pbtxt": data}, "g.pbtxt", _graph_commands(".pbtxt"))
    for label, gd in semantic_graphs():
        run = _run_command() if "splat" not in label else []  # a 2 GB constant is TF's to allocate, not ours
        case(f"semantic-{label}", {"g.pb": gd.SerializeToString()}, "g.pb", _graph_commands(".pb") + run)
    for label, data in list(byte_damage(graph_bytes, rng, 10)):
        case(f"run-{label}", {"g.pb": data}, "g.pb", _run_command())

    mlp = {p.name: p for p in (FIXTURES / "mlp_ref").iterdir() if p.name != "graph.pbtxt"}
    prefix = fixture_checkpoint("mlp_ref").name
    for part, count in ((f"{prefix}.index", 25), (f"{prefix}.data-00000-of-00001", 15), (f"{prefix}.meta", 25)):
        for label, data in byte_damage(mlp[part].read_bytes(), rng, count):
            case(f"ckpt-{part.rsplit('.', 1)[-1]}-{label}", {**mlp, part: data}, prefix, _checkpoint_commands())
    states = {
        "garbage": b"\x00\xff not a state file {{{",
        "long-component": f'model_checkpoint_path: "{"d" * 300}/model.ckpt-3"\n'.encode(),
        "stale": b'model_checkpoint_path: "/nonexistent/elsewhere/model.ckpt-3"\n',
        "missing-step": b'model_checkpoint_path: "model.ckpt-99"\n',
        "empty": b"",
    }
    for label, data in states.items():
        case(f"ckpt-state-{label}", {**mlp, "checkpoint": data}, ".", _checkpoint_commands())
    cond = {p.name: p for p in (FIXTURES / "cfv2_cond").iterdir()}  # a function library (If branches)
    cond_prefix = fixture_checkpoint("cfv2_cond").name
    for label, data in byte_damage(cond[f"{cond_prefix}.meta"].read_bytes(), rng, 20):
        case(f"cfv2-meta-{label}", {**cond, f"{cond_prefix}.meta": data}, cond_prefix, _checkpoint_commands("w"))
    case("ckpt-no-data", {k: v for k, v in mlp.items() if ".data-" not in k}, prefix, _checkpoint_commands())
    case("ckpt-data-is-dir", {k: v for k, v in mlp.items() if ".data-" not in k}, prefix, _checkpoint_commands())
    (cases[-1].root / f"{prefix}.data-00000-of-00001").mkdir()

    for sm in ("saved_model_tf1", "tf2_module", "keras_cnn"):
        src = FIXTURES / sm
        files = {str(p.relative_to(src)): p for p in src.rglob("*") if p.is_file()}
        index = "variables/variables.index"
        for part, count in (("saved_model.pb", 20 if sm != "keras_cnn" else 12), (index, 8)):
            for label, data in byte_damage(files[part].read_bytes(), rng, count):
                case(f"{sm}-{part.split('/')[-1]}-{label}", {**files, part: data}, ".", _saved_model_commands())
        case(f"{sm}-no-variables", {k: v for k, v in files.items() if not k.startswith("variables/")}, ".",
             _saved_model_commands())
    case("graphdef-named-saved-model", {"saved_model.pb": graph_bytes}, ".", _saved_model_commands())

    nrng = np.random.default_rng(SEED)
    model = caffe_model(CAFFE_NET, nrng)
    for label, data in byte_damage(CAFFE_NET.encode(), rng, 15):
        case(f"caffe-proto-{label}", {"n.prototxt": data, "n.caffemodel": model}, "n.prototxt", _caffe_commands(),
             ("n.caffemodel",))
    for label, data in byte_damage(model, rng, 20):
        case(f"caffe-model-{label}", {"n.prototxt": CAFFE_NET.encode(), "n.caffemodel": data}, "n.prototxt",
             _caffe_commands(), ("n.caffemodel",))
    for label, (old, new) in CAFFE_EDITS.items():
        assert old in CAFFE_NET, label
        net = CAFFE_NET.replace(old, new, 1).encode("utf-8", "surrogateescape")
        case(f"caffe-{label}", {"n.prototxt": net, "n.caffemodel": model}, "n.prototxt", _caffe_commands(),
             ("n.caffemodel",))
    case("caffe-third-conv-blob", {"n.prototxt": CAFFE_NET.encode(), "n.caffemodel": caffe_model(
        CAFFE_NET, nrng, extra_blob=True)}, "n.prototxt", _caffe_commands(), ("n.caffemodel",))

    # wrong formats: each kind of file where another is expected
    others = {"index-as-graph": mlp[f"{prefix}.index"], "meta-as-graph": mlp[f"{prefix}.meta"],
              "caffemodel-as-graph": None, "text-as-binary": FIXTURES / "frozen" / "sigmoid.pbtxt"}
    for label, src_path in others.items():
        data = model if src_path is None else src_path.read_bytes()
        case(f"format-{label}", {"g.pb": data}, "g.pb", _graph_commands(".pb"))
    case("format-random", {"g.pb": bytes(rng.randrange(256) for _ in range(4096))}, "g.pb", _graph_commands(".pb"))
    case("format-graph-as-prototxt", {"n.prototxt": graph_bytes, "n.caffemodel": model}, "n.prototxt",
         _caffe_commands(), ("n.caffemodel",))

    # odd paths
    case("path-directory", {"g.pb/inner": b""}, "g.pb", _graph_commands(".pb"))
    case("path-fifo", {}, "g.pb", _graph_commands(".pb"))
    os.mkfifo(cases[-1].model)
    case("path-symlink-loop", {}, "g.pb", _graph_commands(".pb"))
    os.symlink(cases[-1].root / "g.pb", cases[-1].model)
    return cases


def _output_variants(work: Path) -> list[tuple[str, list[str], Path]]:
    """Output paths no command may write through (each with the input it must leave alone)."""
    src = work / "outputs" / "g.pb"
    src.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "frozen" / "sigmoid.pb", src)
    (src.parent / "sub").mkdir()
    os.symlink(src, src.parent / "link.pb")
    os.link(src, src.parent / "hard.pb")
    (src.parent / "file").write_bytes(b"x")
    long = src.parent / ("n" * 300 + ".pb")
    outs = {"same": src, "dotdot": src.parent / "sub" / ".." / "g.pb", "symlink": src.parent / "link.pb",
            "hardlink": src.parent / "hard.pb", "under-a-file": src.parent / "file" / "o.pb", "too-long": long,
            "missing-folder": src.parent / "nope" / "o.pb"}
    runs = []
    for label, out in outs.items():
        for command in ("prune", "set-batch", "rename", "freeze"):
            extra = {"rename": ["--add-prefix", "p/"], "prune": ["--outputs", "y"], "freeze": ["--outputs", "y"]}
            runs.append((f"{label}-{command}", [command, str(src), str(out), *extra.get(command, [])], src))
    return runs


# -- running and checking -----------------------------------------------------------------------------------------

class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def fire(signum, frame):
        raise Hang(f"no answer in {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.exists():
            out[str(path)] = "link"
        elif stat.S_ISREG(path.stat().st_mode):
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _written(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.rglob("*") if p.is_file())


def _check_output(tf, path: Path) -> str | None:
    """Why an output that exit 0 promised is not usable, or None."""
    if path.name.endswith(".index"):  # a checkpoint written: graphkit and TF read every tensor
        from graphkit.io import open_checkpoint

        prefix = str(path)[: -len(".index")]
        try:
            ckpt = open_checkpoint(prefix)
            for info in ckpt.tensors():
                ckpt.read(info.name)
        except Exception as exc:  # noqa: BLE001 -- reported as a finding
            return f"graphkit cannot read the checkpoint it wrote: {exc}"
        if tf is not None:
            reader = tf.train.load_checkpoint(prefix)
            for key in reader.get_variable_to_shape_map():
                reader.get_tensor(key)
        return None
    if path.name.endswith((".pb", ".pbtxt", ".meta")) or path.is_dir() and (path / "saved_model.pb").exists():
        try:
            model = load(path)
        except Exception as exc:  # noqa: BLE001 -- reported as a finding
            return f"graphkit cannot read its own output: {exc}"
        graph_def = model.graph.graph_def if model.graph is not None else None
        if graph_def is None:
            return None
        if not graph_def.node:
            return "an empty graph (exit 0 should mean the model's outputs are there)"
        problems = validate(graph_def)
        if problems:
            return f"the output does not validate: {problems[:3]}"
        if tf is not None:
            gd = tf.compat.v1.GraphDef.FromString(graph_def.SerializeToString())
            try:
                with tf.Graph().as_default():
                    tf.compat.v1.import_graph_def(gd, name="")
            except Exception as exc:  # noqa: BLE001
                return f"TensorFlow refuses the output: {str(exc).splitlines()[0]}"
    return None


def run_one(runner, tf, args: list[str], root: Path, out_dir: Path, names: list[str]) -> tuple[int, str | None]:
    """Run one command line; return its exit code (-1 for a hang) and what broke a promise, or None."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    before = _digest(root)
    try:
        with deadline(HANG_SECONDS):
            result = runner.invoke(cli, args, catch_exceptions=True)
    except Hang as exc:
        return -1, f"hang: {exc}"
    return result.exit_code, _verdict(tf, result, root, before, out_dir, names)


def _verdict(tf, result, root: Path, before: dict[str, str], out_dir: Path, names: list[str]) -> str | None:
    """What a finished run broke of the promises (see the module docstring), or None."""
    if _digest(root) != before:
        return "the input changed"
    stderr = result.stderr.strip()
    if result.exit_code == 0:
        for path in [out_dir / p for p in os.listdir(out_dir)]:
            why = _check_output(tf, path)
            unregistered = re.search(r"Op type not registered '([^']+)'", why or "")
            if unregistered and f"defines no op {unregistered.group(1)} " in result.stdout:
                continue  # not TF's op: maybe a custom one, which graphkit cannot know, so it says so
            if why:
                return why
        return None
    if result.exit_code != 1:
        return f"exit {result.exit_code}: {stderr[-300:] or result.exception!r}"
    lines = stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"not one error line: {stderr[-400:]!r}"
    if "internal error" in lines[0] or "Traceback" in stderr:
        return f"internal error: {lines[0]}"
    if not any(name in lines[0] for name in names):
        return f"the error names no file of the case: {lines[0]}"
    left = _written(out_dir) + [p for p in out_dir.rglob("*") if p.is_dir() and p.name != "logs"]
    if left:
        return f"left behind after a failure: {[str(p.relative_to(out_dir)) for p in left]}"
    return None


@pytest.fixture(scope="module")
def tf_or_none():
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow

        return tensorflow
    except ImportError:
        return None


def test_the_bad_input_corpus(tmp_path, runner, tf_or_none):
    cases = build_corpus(tmp_path / "corpus")
    assert len(cases) >= 300, len(cases)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    failures: list[str] = []
    exits = {0: 0, 1: 0}
    out = tmp_path / "out"
    for case in cases:
        for build in case.commands:
            args = [a.format(m=case.model, x0=case.extra[0] if case.extra else "") for a in build(out)]
            code, why = run_one(runner, tf_or_none, args, case.root, out, [str(case.root), str(out)])
            exits[code] = exits.get(code, 0) + 1
            if why:
                failures.append(f"{case.name}: graphkit {' '.join(args)}: {why}")
    for label, args, src in _output_variants(tmp_path / "paths"):
        code, why = run_one(runner, tf_or_none, args, src.parent, out, [str(src.parent)])
        if why or code != 1:
            failures.append(f"output-{label}: graphkit {' '.join(args)}: {why or 'accepted'}")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    runs = sum(exits.values())
    assert not failures, f"{len(failures)} of {runs} runs broke a promise:\n" + "\n".join(failures[:80])
    assert exits[0] > 100 and exits[1] > 300, exits  # both outcomes were exercised
    assert grown < MEMORY_GROWTH_LIMIT, f"peak memory grew by {grown >> 20} MB over the corpus"
