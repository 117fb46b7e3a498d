"""`rnn-tutor serve`: the tutor in a browser, one tutor process (and its training worker) per tab.

Built on textual-serve. What this module adds to its Server and AppService:

- The command is fixed when the server starts: an argv list (this interpreter, `-m tutor`, the
  server's own tutor options) run without a shell. Nothing a browser sends reaches it: the page's
  query (fontsize, width, height) is read as bounded whole numbers, and a websocket message is
  only keys for the tutor's input, a bounded resize, a ping, focus or blur.
- At most `max_sessions` tutors at once; beyond that the page says the server is full (HTTP 503),
  and a websocket that still gets through is told so on its terminal without starting a process.
- Each tutor starts in its own process group, so its training worker can be ended with it: closing
  a tab asks the tutor to quit, then terminates and finally kills the group. ctrl+c, SIGTERM or
  SIGHUP end every session that way before the server exits.
- It listens on 127.0.0.1 unless told otherwise. A websocket from another site's page (Origin not
  this server) is refused, and while bound to loopback only loopback Host names are served, which
  also stops DNS rebinding.
- Every tutor's child processes (its training worker) run at nice 10: with more sessions training
  than cores, a key in any tab is still handled at once (bench/serve_load.py measures it).
- Unless `shared_progress`, each tab keeps its progress in its own temporary folder, dropped when
  the tab closes: the learners at one server are not one learner.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# One session per two cores: a training worker takes a whole core and the tutor's own drawing
# needs the other to keep keys within the terminal's goal. On 2 cores one session met it and two
# did not (bench/serve_load.py; README "In a browser").
DEFAULT_MAX_SESSIONS = max(1, min((os.cpu_count() or 1) // 2, 64))
MIN_COLS, MAX_COLS = 10, 400      # a browser cannot make the tutor allocate an absurd screen
MIN_ROWS, MAX_ROWS = 5, 200
MAX_KEYS_CHARS = 64 * 1024        # one websocket message of keys (a large paste at most)
QUIT_GRACE_S = 3.0                # a tutor asked to quit gets this long before SIGTERM
TERM_GRACE_S = 2.0                # ... and this long after SIGTERM before SIGKILL
SLOT_WAIT_S = 4.0                 # a reloaded tab waits this long for its old session to end
SESSION_DIR_PREFIX = "rnn-tutor-serve-"   # + server pid + "-": each tab's own progress folder
NOTICE_CLOSE_S = 0.5              # ... once the server has noticed the old tab close
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
TRAINER_NICE = 10                 # training workers yield the cores to the tutors' key handling
NICE_EVERY_S = 1.0


class ServeError(Exception):
    """A one-line problem starting the server (the address is in use, say)."""


@dataclass
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_sessions: int = DEFAULT_MAX_SESSIONS
    tutor_args: list[str] = field(default_factory=list)   # passed to each session's rnn-tutor
    shared_progress: bool = False


def tutor_argv(tutor_args: list[str]) -> list[str]:
    """The fixed command every session runs: this interpreter, so the same install."""
    return [sys.executable, "-m", "tutor", *tutor_args]


def bounded(value: object, low: int, high: int, default: int) -> int:
    """A whole number from a client, clamped into [low, high]; anything else is `default`."""
    if isinstance(value, bool):
        return default
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return default
    if not isinstance(value, int):
        return default
    return max(low, min(high, value))


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """"localhost:8000" -> "localhost", "[::1]:8000" -> "[::1]"."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


# --- one tab ---------------------------------------------------------------------------------

class TutorSession(AppService):
    """One tab's tutor: started from a fixed argv in its own process group, always ended."""

    def __init__(self, argv: list[str], env: dict[str, str], **kwargs) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = list(argv)
        self.extra_env = dict(env)
        self._closing: asyncio.Task | None = None

    @property
    def ending(self) -> bool:
        return self._closing is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def _open_app_process(self, width: int = 80, height: int = 24):
        environment = self._build_environment(width=width, height=height)
        environment.update(self.extra_env)
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=environment, start_new_session=True,
            preexec_fn=_end_with_parent())
        self._stdin = process.stdin
        return process

    async def close(self) -> None:
        """Ask the tutor to quit; then SIGTERM, then SIGKILL its whole process group. Safe to
        call more than once and from several places: they all wait for the same ending."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None and self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._ask_to_quit()), QUIT_GRACE_S)
            except (asyncio.TimeoutError, OSError, RuntimeError):
                pass
        # The tutor has gone (or will not go); its training worker shares its process group.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _group_alive(process.pid):
                break
            _signal_group(process.pid, sig)
            await _wait_group(process.pid, TERM_GRACE_S)
        if process.returncode is None:
            await process.wait()
        if self._task is not None:            # its reader ends at EOF and prints its stderr
            try:
                await asyncio.wait_for(self._task, 1.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            self._task = None

    async def _ask_to_quit(self) -> None:
        await self.send_meta({"type": "quit"})
        await self._process.wait()


def _end_with_parent():
    """On Linux, a function for the child to run before exec: SIGTERM it when the server dies,
    even by SIGKILL, so that no tutor trains on with nobody connected. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    server_pid = os.getpid()
    PR_SET_PDEATHSIG = 1

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != server_pid:      # the server died before the line above
            os._exit(1)
    return in_child


def children(pid: int) -> set[int]:
    """A process's direct children, from /proc (Linux); empty elsewhere or once it is gone."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def lower_priority(pids) -> None:
    for pid in pids:
        try:
            if os.getpriority(os.PRIO_PROCESS, pid) < TRAINER_NICE:
                os.setpriority(os.PRIO_PROCESS, pid, TRAINER_NICE)
        except (OSError, AttributeError):
            continue


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when it has no member left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


async def _wait_group(pgid: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while _group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


# --- the server ------------------------------------------------------------------------------

FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rnn-tutor: the server is full</title>
<style>body{{background:#0c181f;color:#eee;font:16px/1.5 menlo,monospace;display:flex;
align-items:center;justify-content:center;height:90vh}}div{{max-width:36em;padding:2em;
background:#12232d}}button{{font:inherit;padding:.5em 1.5em;margin-top:1em}}</style></head>
<body><div><h2>All {n} sessions are in use</h2>
<p>This rnn-tutor server runs at most {n} tutors at once, so that each one stays quick.
Close another tutor tab, or wait a moment, then try again.</p>
<button onclick="location.reload()">Try again</button></div></body></html>
"""

FULL_TERMINAL = ("\x1b[2J\x1b[H\x1b[1mAll {n} sessions are in use.\x1b[0m\r\n\r\n"
                 "This rnn-tutor server runs at most {n} tutors at once.\r\n"
                 "Close another tutor tab, then reload this page.\r\n")


GOOGLE_FONTS = re.compile(r'<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com[^"]*"\s*/?>')
LOCAL_FONT = """<style>
      @font-face { font-family: "Roboto Mono"; font-style: normal; font-weight: 100 700;
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
      @font-face { font-family: "Roboto Mono"; font-style: italic; font-weight: 100 700;
        src: url("{{ config.static.url }}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
    </style>"""


class TutorServer(Server):
    """textual-serve's Server with a fixed argv, a session cap and a clean shutdown."""

    def __init__(self, options: ServeOptions, out=None) -> None:
        self.options = options
        self.argv = tutor_argv(options.tutor_args)
        super().__init__(" ".join(["rnn-tutor", *options.tutor_args]), host=options.host,
                         port=options.port, title="rnn-tutor")
        self.sessions: set[TutorSession] = set()
        self.sockets: set[web.WebSocketResponse] = set()
        self.out = out or sys.stdout
        self.url = ""

    def say(self, line: str) -> None:
        print(f"rnn-tutor serve: {line}", file=self.out, flush=True)

    # --- routes ---

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"app_index.html": self.page()}))
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.static("/static", self.statics_path, name="static"),
        ])
        return app

    def page(self) -> str:
        """textual-serve's page, with its font served from here rather than fetched from Google
        Fonts: a classroom server may be offline, and a learner's browser tells no third party."""
        html = (Path(self.templates_path) / "app_index.html").read_text(encoding="utf-8")
        return GOOGLE_FONTS.sub(LOCAL_FONT, html, count=1)

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        if is_loopback(self.options.host) and not is_loopback(_host_name(request.host)):
            return web.Response(status=421, text="rnn-tutor serves this machine only "
                                "(127.0.0.1 or localhost)\n")
        return await handler(request)

    def full(self) -> bool:
        return len(self.sessions) >= self.options.max_sessions

    async def wait_for_slot(self) -> bool:
        """True when a session may start. A tab being reloaded closes its old session just
        before it asks for a new one, so wait a little for sessions that are ending."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while self.full():
            waited = loop.time() - start
            ending = any(session.ending for session in self.sessions)
            if waited > SLOT_WAIT_S or (waited > NOTICE_CLOSE_S and not ending):
                return False
            await asyncio.sleep(0.05)
        return True

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if not await self.wait_for_slot():
            return web.Response(status=503, content_type="text/html",
                                text=FULL_PAGE.format(n=self.options.max_sessions),
                                headers={"Retry-After": "30"})
        base = f"{request.scheme}://{request.host}"
        ws_scheme = "wss" if request.scheme == "https" else "ws"
        context = {
            "font_size": bounded(request.query.get("fontsize", "16"), 6, 48, 16),
            "app_websocket_url": f"{ws_scheme}://{request.host}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            return web.Response(status=403, text="rnn-tutor: websocket from another site\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        self.sockets.add(websocket)
        try:
            if not await self.wait_for_slot():
                await websocket.send_bytes(
                    FULL_TERMINAL.format(n=self.options.max_sessions).encode())
                async for _ in websocket:     # hold the message up until the tab goes
                    pass
                return websocket
            await self._run_session(request, websocket)
        finally:
            self.sockets.discard(websocket)
            if not websocket.closed:
                await websocket.close()
        return websocket

    async def _run_session(self, request: web.Request, websocket: web.WebSocketResponse) -> None:
        width = bounded(request.query.get("width", "80"), MIN_COLS, MAX_COLS, 80)
        height = bounded(request.query.get("height", "24"), MIN_ROWS, MAX_ROWS, 24)
        data_dir = None if self.options.shared_progress else tempfile.mkdtemp(
            prefix=f"{SESSION_DIR_PREFIX}{os.getpid()}-")
        env = {} if data_dir is None else {"RNN_TUTOR_DATA_DIR": data_dir}
        session = TutorSession(self.argv, env, write_bytes=websocket.send_bytes,
                               write_str=websocket.send_str, close=websocket.close,
                               download_manager=self.download_manager)
        self.sessions.add(session)
        try:
            await session.start(width, height)
            self.say(f"session {session.pid} opened ({len(self.sessions)} of "
                     f"{self.options.max_sessions})")
            gone = asyncio.ensure_future(self._close_when_gone(session, websocket))
            try:
                await self._relay(websocket, session)
            finally:
                gone.cancel()
        except OSError as exc:
            self.say(f"could not start a tutor: {exc}")
        finally:
            try:
                await session.close()
            finally:
                self.sessions.discard(session)
                if data_dir is not None:
                    shutil.rmtree(data_dir, ignore_errors=True)
            if session.pid is not None:
                self.say(f"session {session.pid} ended ({len(self.sessions)} of "
                         f"{self.options.max_sessions})")

    @staticmethod
    async def _close_when_gone(session: TutorSession, websocket: web.WebSocketResponse) -> None:
        """A tutor that ended without saying so (killed, crashed) frees its tab and its slot."""
        await session._process.wait()
        await asyncio.sleep(0.5)                 # its last output and exit message go first
        await websocket.close()

    async def _relay(self, websocket: web.WebSocketResponse, session: TutorSession) -> None:
        """Pass the browser's messages on; anything malformed is dropped, never fatal."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], (envelope[1] if len(envelope) > 1 else None)
            if kind == "stdin" and isinstance(data, str) and len(data) <= MAX_KEYS_CHARS:
                await session.send_bytes(data.encode("utf-8", "replace"))
            elif kind == "resize" and isinstance(data, dict):
                await session.set_terminal_size(
                    bounded(data.get("width"), MIN_COLS, MAX_COLS, 80),
                    bounded(data.get("height"), MIN_ROWS, MAX_ROWS, 24))
            elif kind == "ping" and isinstance(data, (str, int, float)):
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await session.blur()
            elif kind == "focus":
                await session.focus()

    # --- running ---

    async def _lower_trainers(self) -> None:
        """Keep every session's training worker (a tutor's children, which a new run may
        replace) at TRAINER_NICE."""
        while True:
            for session in list(self.sessions):
                if session.pid is not None:
                    lower_priority(children(session.pid))
            await asyncio.sleep(NICE_EVERY_S)

    async def run(self, ready=None) -> None:
        """Serve until SIGINT, SIGTERM or SIGHUP; then end every session and return."""
        remove_stale_session_dirs()
        app = await self._make_app()
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0,
                               access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.options.host, self.options.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = exc.strerror or str(exc)
            raise ServeError(f"cannot listen on {self.options.host} port "
                             f"{self.options.port}: {reason}") from None
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}/"
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        self.say(f"serving the tutor on {self.url} (up to {self.options.max_sessions} "
                 "sessions); ctrl+c stops it")
        if ready is not None:
            ready(self.url)
        nicer = asyncio.ensure_future(self._lower_trainers())
        try:
            await stop.wait()
        finally:                                   # a second ctrl+c changes nothing here
            nicer.cancel()
            count = len(self.sessions)
            self.say(f"stopping: ending {count} session{'s' * (count != 1)}")
            await site.stop()                     # no new connections from here on
            await asyncio.gather(*(s.close() for s in list(self.sessions)))
            await asyncio.gather(*(ws.close() for ws in list(self.sockets)),
                                 return_exceptions=True)
            await runner.cleanup()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.say("stopped")


def remove_stale_session_dirs() -> None:
    """Progress folders left by a server that was killed outright (it could not tidy up): those
    named for a server pid that no longer runs, and owned by this user."""
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{SESSION_DIR_PREFIX}*"):
        pid = folder.name[len(SESSION_DIR_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid() or not folder.is_dir():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue                              # alive (or not ours to judge)


def check_tutor_options(lessons: str | None, lesson: str | None) -> None:
    """Fail at start, not in every tab, on a lessons folder or a lesson that cannot be used."""
    from tutor.lessons import LessonsError, find_lesson, load_lessons

    try:
        lesson_set = load_lessons(Path(lessons) if lessons else None)
    except LessonsError as exc:
        raise ServeError(str(exc)) from None
    if lesson is not None and find_lesson(lesson_set, lesson) is None:
        count = len(lesson_set.lessons)
        listed = f"; the lessons are 1–{count}" if count else ""
        raise ServeError(f"no lesson {lesson!r}{listed}")


def serve(options: ServeOptions) -> int:
    server = TutorServer(options)
    try:
        asyncio.run(server.run())
    except ServeError as exc:
        print(f"rnn-tutor: {exc}", file=sys.stderr)
        return 1
    return 0
