"""The shared CLI pieces: the progress bar only on a terminal, never with --quiet, never for quick work."""

from __future__ import annotations

import io

from conftest import fixture_checkpoint

from graphkit.cliutil import ProgressBar, progress
from graphkit.freeze import freeze


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_not_a_terminal_or_quiet():
    with progress("x", quiet=False, stream=io.StringIO()) as bar:
        assert bar is None
    with progress("x", quiet=True, stream=_Tty()) as bar:
        assert bar is None


def test_bar_waits_for_slow_work_then_draws_and_clears():
    stream = _Tty()
    with progress("freezing", quiet=False, stream=stream) as bar:
        assert isinstance(bar, ProgressBar)
        bar(10, 100)  # within the first second: nothing
        assert stream.getvalue() == ""
        bar.start -= 2
        bar(50_000_000, 100_000_000)
    out = stream.getvalue()
    assert "freezing [###############...............]  50% 50/100 MB" in out
    assert out.endswith("\r\033[K")


def test_freeze_reports_bytes_written_to_the_callback(tmp_path):
    calls = []
    report = freeze(fixture_checkpoint("mlp_ref"), tmp_path / "f.pb", outputs=["output"],
                    progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (report.bytes_written, report.bytes_written)
    assert all(a <= b for (a, _), (b, _) in zip(calls, calls[1:], strict=False))
