"""Run a command in a child process; report its wall time and its own peak RSS (from wait4).

Linux keeps a process's RSS high-water mark across exec, so a child starts from its parent's: keep the
measuring process small (no numpy, no generated data in it) or every child inherits its size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    seconds: float
    peak_mb: float


def measure(argv: list[str], repeat: int = 3, env: dict[str, str] | None = None,
            ok_codes: tuple[int, ...] = (0,)) -> Run:
    """Best of ``repeat`` runs (time and RSS of the same run); ``ok_codes``: exit codes that mean it worked
    (``diff`` exits 1 when the inputs differ)."""
    best: Run | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode not in ok_codes:
            sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(argv)}\n{err[-2000:]}")
        run = Run(elapsed, usage.ru_maxrss / 1024)
        if best is None or run.seconds < best.seconds:
            best = run
    assert best is not None
    return best


def table(rows: list[tuple[str, Run, Run]]) -> str:
    head = (f"{'case':44s} {'graphkit':>10s} {'RSS':>9s} {'TF way':>10s} {'RSS':>9s} "
            f"{'time ratio':>11s} {'RSS ratio':>10s}")
    lines = [head, "-" * len(head)]
    for name, ours, theirs in rows:
        lines.append(
            f"{name:44s} {ours.seconds:9.2f}s {ours.peak_mb:7.0f}MB {theirs.seconds:9.2f}s {theirs.peak_mb:7.0f}MB "
            f"{theirs.seconds / ours.seconds:10.1f}x {theirs.peak_mb / ours.peak_mb:9.1f}x")
    lines.append("ratios: how many times faster / leaner graphkit is than the TensorFlow way")
    return "\n".join(lines)


def bench_args(doc: str | None, repeat: int = 2, extra: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> tuple[argparse.Namespace, Path]:
    """The options every benchmark takes (--gb, --workdir, --repeat, plus ``extra``) and its work folder."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--gb", type=float, default=1.0, help="approximate size of the generated files")
    parser.add_argument("--workdir", default="bench-out")
    parser.add_argument("--repeat", type=int, default=repeat)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(exist_ok=True)
    _compile_bytecode()
    return args, work


def _compile_bytecode() -> None:
    """Write graphkit's .pyc files, as ``pip install`` of a wheel does (TF's are written at install too):
    with PYTHONDONTWRITEBYTECODE set, an editable install would otherwise compile every module on every
    run and the benchmark would time the compiler."""
    import compileall

    import graphkit

    compileall.compile_dir(str(Path(graphkit.__file__).parent), quiet=1)
