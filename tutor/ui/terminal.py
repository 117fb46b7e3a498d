"""What every full-screen entry point does with its terminal, in one place: leave cleanly on
SIGTERM and SIGHUP (a dropped SSH connection) and when the terminal disappears without one, keep
key latency low, and turn a crash into one line plus a log file. No NumPy here, so it costs
nothing at start-up."""
from __future__ import annotations

import asyncio
import os
import gc
import math
import signal
import sys
import termios
import time
import traceback
from pathlib import Path

from textual.app import App

LOG_NAME = "rnn-tutor.log"
MAX_LOG_BYTES = 256 * 1024
TERMINAL_CHECK_S = 0.5     # a lost terminal is noticed within this (the goal is 2 s)
MAX_FPS = 60.0


def fps_problem(fps) -> str | None:
    """Why `fps` cannot be used, in the CLI's words, or None."""
    if isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) \
            and 0 < fps <= MAX_FPS:
        return None
    return f"--fps must be above 0 and at most {MAX_FPS:g}, got {fps}"


def tune_interpreter() -> None:
    """Call before App.run(): hand the GIL back to Textual's input and output threads quickly."""
    sys.setswitchinterval(0.001)


def start_session(app: App) -> None:
    """Call from on_mount. Not under a test runner (headless), which owns the process's signals."""
    if app.is_headless:
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, lambda: _leave(app))
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    if _terminal_alive():
        app.set_interval(TERMINAL_CHECK_S, lambda: _terminal_alive() or _leave(app))
    app.call_after_refresh(freeze_startup_objects)


def _terminal_alive() -> bool:
    """False once stdin's terminal has hung up. Textual's input thread busy-loops at EOF, and a
    terminal closed under a process started with nohup or setsid sends no SIGHUP, so without
    this check such a tutor would spin a core until killed."""
    try:
        termios.tcgetattr(sys.__stdin__.fileno())
        return True
    except (termios.error, OSError, ValueError, AttributeError):
        return False


def _leave(app: App) -> None:
    # The handlers live as long as the event loop; after the app has gone they do nothing.
    if app.is_running:
        app.exit(0)


def freeze_startup_objects() -> None:
    """Move everything built at start-up (Textual, Rich, the widgets) out of the garbage
    collector's sight: a full collection of that heap stalls the event loop 13-21 ms every few
    seconds, which a learner feels as a late key."""
    gc.collect()
    gc.freeze()


class OneLineErrors:
    """Mix into an App: an unexpected error goes to the log file, and `run_app` prints one line
    instead of Textual's traceback."""

    crash_summary: str | None = None
    crash_log: Path | None = None

    def _handle_exception(self, error: Exception) -> None:
        self.crash_log = write_crash_log(error)
        self.crash_summary = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        super()._handle_exception(error)

    def _print_error_renderables(self) -> None:
        if self.crash_summary and "debug" not in self.features:
            self._exit_renderables.clear()
        super()._print_error_renderables()


class _HangupProofFile:
    """The terminal as Textual's writer thread sees it. Once the terminal has hung up (a dropped
    connection), a write raises EIO, which ends that thread; the app's next writes then block
    for ever on its full queue and the tutor never exits. Here output to a lost terminal is
    dropped instead: there is nobody left to read it."""

    def __init__(self, file):
        self._file = file
        self.lost = False

    def write(self, text: str) -> None:
        if not self.lost:
            try:
                self._file.write(text)
            except (OSError, ValueError):
                self.lost = True

    def flush(self) -> None:
        if not self.lost:
            try:
                self._file.flush()
            except (OSError, ValueError):
                self.lost = True

    def __getattr__(self, name):
        return getattr(self._file, name)


def _hangup_proof(driver_class: type) -> type:
    """Textual's Linux driver writing through a _HangupProofFile; any other driver unchanged."""
    if driver_class.__name__ != "LinuxDriver":
        return driver_class

    class HangupProofDriver(driver_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._file = _HangupProofFile(self._file)

    return HangupProofDriver


def run_app(app: App, prog: str = "rnn-tutor") -> int:
    """Run a full-screen app; returns an exit code. Problems are one line, never a traceback."""
    tune_interpreter()
    app.driver_class = _hangup_proof(app.driver_class)
    try:
        app.run()
    except Exception as exc:   # raised outside the app's own handler; the terminal is restored
        log = write_crash_log(exc)
        print(f"{prog}: internal error: {type(exc).__name__}: {exc}"
              + (f" (details in {log})" if log else ""), file=sys.stderr)
        return 1
    summary = getattr(app, "crash_summary", None)
    if summary:
        log = getattr(app, "crash_log", None)
        print(f"{prog}: internal error: {summary}" + (f" (details in {log})" if log else ""),
              file=sys.stderr)
        return 1
    return app.return_code or 0


def write_crash_log(error: BaseException) -> Path | None:
    """Append the traceback to the log in the data folder (or the temp folder); return its path."""
    from tutor import progress as progress_store
    text = (time.strftime("%Y-%m-%d %H:%M:%S ") + "rnn-tutor crashed\n"
            + "".join(traceback.format_exception(type(error), error, error.__traceback__)) + "\n")
    candidates = []
    try:
        candidates.append(progress_store.data_dir())
    except Exception:
        pass
    import tempfile
    candidates.append(Path(tempfile.gettempdir()))
    for folder in candidates:
        path = folder / LOG_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
                path.replace(path.with_suffix(".log.old"))
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return None


def interactive() -> bool:
    return sys.stdout.isatty() and sys.stdin.isatty()


def print_text(text: str) -> int:
    """Write to stdout for a pipe or a file; a closed pipe (| head) is not an error."""
    try:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:             # a non-UTF-8 locale: send the bytes as UTF-8
            sys.stdout.flush()
            sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush stays quiet
    return 0
