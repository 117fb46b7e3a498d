"""What every full-screen entry point does once its app is running, in one place: leave cleanly
on SIGTERM and SIGHUP (a dropped SSH connection), and keep key latency low. No NumPy here, so it
costs nothing at start-up."""
from __future__ import annotations

import asyncio
import gc
import signal
import sys

from textual.app import App


def tune_interpreter() -> None:
    """Call before App.run(): hand the GIL back to the UI thread quickly when the thread that
    reads the worker's pipe holds it."""
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
    app.call_after_refresh(freeze_startup_objects)


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
