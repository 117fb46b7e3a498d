"""The tutor in a real pseudo-terminal, read back with pyte: clean exit on q, ctrl+c, SIGTERM and
SIGHUP (terminal restored, no process left), and a crash printed as one line, not a traceback."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from test_app_support import write_lessons

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ptyterm import PtyTerm, descendants  # noqa: E402

ALT_SCREEN, MOUSE_MODE = 1049 << 5, 1000 << 5          # pyte private modes
EXIT_LIMIT_S = 3.0       # generous for a loaded test machine; bench/ measures the 1 s goal


def screen_modes(term: PtyTerm) -> tuple[set[int], bool]:
    """The terminal's modes and whether the cursor is hidden, after parsing all output read."""
    term.text                      # the harness parses pending output when the screen is read
    return set(term.screen.mode), term.screen.cursor.hidden


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def tutor_term(tmp_path):
    lessons = write_lessons(tmp_path / "lessons")
    env = {"RNN_TUTOR_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": os.getcwd()}

    def start(argv=None, cols=80, rows=24, controlling=True) -> PtyTerm:
        argv = argv or [sys.executable, "-m", "tutor", "--lessons", str(lessons)]
        term = PtyTerm(argv, cols=cols, rows=rows, env=env, cwd=os.getcwd(),
                       controlling=controlling)
        # shutil.get_terminal_size (which Textual uses) prefers these to the pty's real size,
        # so with them set a resize would never reach the app.
        term.env.pop("COLUMNS", None)
        term.env.pop("LINES", None)
        return term.start()

    start.lessons = lessons
    return start


def wait_for_worker(term: PtyTerm, timeout: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = descendants(term.proc.pid)
        if kids and "step" in term.text:
            return kids
        time.sleep(0.1)
    raise AssertionError("the lab's worker never started:\n" + term.text)


@pytest.mark.parametrize("how", ["q", "ctrl+c", "SIGTERM", "SIGHUP"])
def test_exit_is_quick_restores_the_terminal_and_leaves_no_process(tutor_term, how):
    term = tutor_term()
    try:
        term.wait_for(lambda t: "First steps" in t.text, timeout=30)
        term.send("v")                                    # the lab, training at full speed
        kids = wait_for_worker(term)
        assert ALT_SCREEN in screen_modes(term)[0]
        start = time.monotonic()
        if how.startswith("SIG"):
            os.kill(term.proc.pid, getattr(signal, how))
        else:
            term.send(how)
        term.proc.wait(timeout=10)
        took = time.monotonic() - start
        assert took < EXIT_LIMIT_S, f"{how}: exit took {took:.2f} s"
        assert term.proc.returncode == 0
        time.sleep(0.2)                                   # let the reader take the last bytes
        modes, cursor_hidden = screen_modes(term)
        assert ALT_SCREEN not in modes and MOUSE_MODE not in modes
        assert not cursor_hidden
        assert not [pid for pid in kids if alive(pid)], f"{how}: a process was left behind"
        assert "Traceback" not in term.text
    finally:
        term.close()


def test_dropped_connection_leaves_no_process(tutor_term):
    """The pty's master side closing is what a dropped SSH connection looks like."""
    term = tutor_term()
    try:
        term.wait_for(lambda t: "First steps" in t.text, timeout=30)
        term.send("v")                  # live charts: the app keeps writing to the terminal
        kids = wait_for_worker(term)
        term.hang_up()                  # the kernel sends SIGHUP, then reads give EIO
        term.proc.wait(timeout=10)
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in kids if alive(pid)]
    finally:
        term.close()


def test_a_terminal_lost_without_sighup_is_noticed_within_two_seconds(tutor_term):
    """Started as under setsid (the pty is not its controlling terminal), the tutor gets no
    SIGHUP when the pty closes; Textual's input thread would then spin at EOF for ever. The
    watchdog notices the hung-up terminal and the app exits, leaving nothing behind."""
    term = tutor_term(controlling=False)
    try:
        term.wait_for(lambda t: "First steps" in t.text, timeout=30)
        term.send("v")
        kids = wait_for_worker(term)
        t0 = term.hang_up()
        term.proc.wait(timeout=10)
        assert time.monotonic() - t0 < 2.0
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in kids if alive(pid)]
    finally:
        term.close()


def test_a_crash_prints_one_line_and_logs_the_traceback(tutor_term, tmp_path):
    script = ("import sys; import tutor.ui.app as a\n"
              "def broken(self): raise ZeroDivisionError('help is broken')\n"
              "a.TutorApp.action_help = broken\n"
              f"sys.exit(a.run_tutor(lessons_dir={str(tutor_term.lessons)!r}))\n")
    term = tutor_term([sys.executable, "-c", script])
    try:
        term.wait_for(lambda t: "First steps" in t.text, timeout=30)
        term.send("?")
        term.proc.wait(timeout=10)
        assert term.proc.returncode == 1
        time.sleep(0.2)
        text = term.text
        assert "rnn-tutor: internal error: ZeroDivisionError: help is broken" in text
        assert "Traceback" not in text and "locals" not in text
        assert ALT_SCREEN not in screen_modes(term)[0]
        log = (tmp_path / "data" / "rnn-tutor.log").read_text(encoding="utf-8")
        assert "Traceback" in log and "help is broken" in log
    finally:
        term.close()


def test_too_small_then_enlarged_in_a_real_terminal(tutor_term):
    term = tutor_term(cols=30, rows=10)
    try:
        term.wait_for(lambda t: "at least 40×12" in t.text and "30×10" in t.text, timeout=30)
        _resize(term, 80, 24)
        term.wait_for(lambda t: "First steps" in t.text and "at least" not in t.text, timeout=10)
    finally:
        term.close()


def _resize(term: PtyTerm, cols: int, rows: int) -> None:
    import fcntl
    import struct
    import termios

    with term._cond:
        term._feed_all()
        term.screen.resize(rows, cols)
    # The kernel sends SIGWINCH to the terminal's foreground process group.
    fcntl.ioctl(term._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
