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


def test_working_shows_elapsed_time_on_a_terminal_only(tmp_path):
    """Issue 12.16: TF work over ~2 s shows a status line with the elapsed time on a terminal; nothing with
    --quiet or when stderr is not a terminal."""
    import os
    import time

    from graphkit.cliutil import working

    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        with working("converting", quiet=False, stream=tty, delay=0.2):
            time.sleep(1.5)
        with working("quiet", quiet=True, stream=tty, delay=0.0):
            time.sleep(0.3)
        shown = os.read(master, 4096).decode()
    os.close(master)
    assert "converting ... 0 s" in shown and "converting ... 1 s" in shown and shown.endswith("\r\x1b[K")
    assert "quiet" not in shown
    with open(tmp_path / "log", "w") as not_a_tty, working("x", quiet=False, stream=not_a_tty, delay=0.0):
        time.sleep(0.2)
    assert (tmp_path / "log").read_text() == ""


def test_tensorflow_is_silenced_only_when_asked(runner):
    """Issue 14.9: library code no longer silences TensorFlow (fd 2, TF_CPP_MIN_LOG_LEVEL) for the whole
    process; the CLI asks for it, a library caller chooses."""
    import os

    from graphkit.cli import cli
    from graphkit.runtime import quiet

    saved = quiet.is_quiet()
    try:
        quiet.quiet_tensorflow(False)
        before = os.fstat(2)
        with quiet.quiet_stderr():
            assert os.fstat(2).st_ino == before.st_ino  # off: stderr untouched
        runner.invoke(cli, ["inspect", "--help"])
        assert quiet.is_quiet()  # the CLI turned it on
        with quiet.quiet_stderr():
            assert os.fstat(2).st_ino == os.stat(os.devnull).st_ino
        assert os.fstat(2).st_ino == before.st_ino
    finally:
        quiet.quiet_tensorflow(saved)
