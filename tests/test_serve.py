"""`rnn-tutor serve`: a real server in a subprocess, driven over its websocket as a browser tab
drives it. One tutor (and one training worker) per tab, ended when the tab closes; a cap with a
clear refusal; nothing from the browser reaching the command; every process gone after ctrl+c,
SIGTERM, or even SIGKILL of the server."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tutor import cli
from tutor.serve import MAX_COLS, TRAINER_NICE, bounded, is_loopback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.serveclient import Served, Tab, alive, wait_until  # noqa: E402

FIRST_LESSON = "Why sequences need memory"
ENDED_WITHIN_S = 10.0        # generous on a loaded 2-core machine; quit grace is 3 s, TERM 2 s


def lab_step(tab: Tab) -> int | None:
    """The step count on the lab's status line ("step 1234  257 steps/s ...")."""
    found = re.search(r"\bstep (\d+) +[\d.]+ steps/s", tab.text)
    return int(found.group(1)) if found else None


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [part.decode() for part in f.read().split(b"\0") if part]


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = (part.decode(errors="replace").split("=", 1) for part in f.read().split(b"\0"))
        return {p[0]: p[1] for p in pairs if len(p) == 2}


def tutors(served: Served) -> set[int]:
    """The session tutors: the server's direct children."""
    return {pid for pid in served.tree() if cmdline_or_empty(pid)[1:3] == ["-m", "tutor"]}


def cmdline_or_empty(pid: int) -> list[str]:
    try:
        return cmdline(pid)
    except OSError:
        return []


@pytest.fixture
def served_factory():
    started = []

    def start(*args, **kw):
        s = Served(*args, **kw)
        started.append(s)
        return s
    yield start
    for s in started:
        s.close()


# --- options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--port", "70000"], "--port"),
    (["--port", "eighty"], "--port"),
    (["--max-sessions", "0"], "--max-sessions"),
    (["--max-sessions", "1000"], "--max-sessions"),
    (["--host", "http://example.com"], "--host"),
    (["--host", "a b"], "--host"),
    (["--fps", "nan"], "--fps"),
    (["--command", "sh"], "unrecognized"),
])
def test_bad_options_are_one_line_and_exit_2(argv, words, capsys):
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_an_unknown_lesson_or_folder_fails_before_serving(tmp_path, capsys):
    assert cli.main(["serve", "--port", "0", "--lesson", "99"]) == 1
    assert "no lesson '99'" in capsys.readouterr().err
    assert cli.main(["serve", "--port", "0", "--lessons", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err


def test_a_port_in_use_is_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err, err


def test_client_numbers_are_bounded():
    assert bounded("100", 10, 400, 80) == 100
    assert bounded(10**9, 10, MAX_COLS, 80) == MAX_COLS
    assert bounded("-5", 10, 400, 80) == 10
    for junk in ("1e9", "", None, [], {}, True, 3.5, "80; rm -rf /"):
        assert bounded(junk, 10, 400, 80) == 80


def test_loopback_names():
    for name in ("localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"):
        assert is_loopback(name)
    for name in ("0.0.0.0", "example.com", "192.168.1.4", "localhost.example.com"):
        assert not is_loopback(name)


# --- sessions ----------------------------------------------------------------------------------

async def test_each_tab_its_own_tutor_a_cap_and_sigterm_ends_all(served_factory):
    served = served_factory("--max-sessions", "2")
    async with aiohttp.ClientSession() as http:
        page = await http.get(served.url + "?fontsize=1000")
        html = await page.text()
        assert page.status == 200 and "/ws" in html and 'data-font-size="48"' in html
        # Nothing from a third party: the font comes from this server.
        assert "googleapis" not in html and "RobotoMono-VariableFont_wght.ttf" in html
        font = await http.get(served.url + "static/fonts/RobotoMono-VariableFont_wght.ttf")
        assert font.status == 200 and len(await font.read()) > 10_000
        # Another site's page may not drive the tutor; a foreign Host (DNS rebinding) is refused.
        foreign = await http.get(served.url, headers={"Host": "evil.example:80"})
        assert foreign.status == 421
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(served.url + "ws", origin="http://evil.example")
        assert refused.value.status == 403

    # The query carries sizes only; nothing in it reaches the command.
    async with Tab(served.url, query="&command=sh&cmd=touch%20/tmp/x") as first:
        assert await first.wait_for(lambda t: FIRST_LESSON in t.text), first.text
        assert await first.wait_for(lambda t: lab_step(t) is not None), first.text
        (tutor,) = tutors(served)
        assert cmdline(tutor)[1:] == ["-m", "tutor", "--fps", "4.0"]
        worker_tree = served.tree() - {tutor}
        assert worker_tree, "no training worker below the tab's tutor"
        # The training worker yields the cores to the tutors (nice 10); the tutor does not.
        assert wait_until(lambda: all(os.getpriority(os.PRIO_PROCESS, pid) == TRAINER_NICE
                                      for pid in worker_tree), 5)
        assert os.getpriority(os.PRIO_PROCESS, tutor) == os.getpriority(os.PRIO_PROCESS, 0)
        step = lab_step(first)
        assert await first.wait_for(lambda t: (lab_step(t) or 0) > step), "the lab does not train"

        # Malformed messages are dropped; the session lives on and still takes keys.
        for raw in ("not json", "[]", '{"stdin": "q"}', '["stdin", 5]', '["resize", "big"]',
                    '["resize", {"width": "x", "height": -1}]', '["nonsense", 1]'):
            await first.ws.send_str(raw)
        await first.send(["resize", {"width": 10**9, "height": 10**9}])
        await first.send(["resize", {"width": first.cols, "height": first.rows}])
        await first.pump(1.5)                 # a key sent mid-resize may meet the too-small view
        await first.keys("?")
        assert await first.wait_for(lambda t: "rnn-tutor keys" in t.text), first.text
        await first.keys("\x1b")

        async with Tab(served.url) as second:
            assert await second.wait_for(lambda t: FIRST_LESSON in t.text), second.text
            both = tutors(served)
            assert len(both) == 2
            # Each tab has its own progress folder, not the server user's.
            folders = {environ(pid).get("RNN_TUTOR_DATA_DIR") for pid in both}
            assert len(folders) == 2 and None not in folders

            # The cap: the page says the server is full, and a websocket gets a message only.
            async with aiohttp.ClientSession() as http:
                page = await http.get(served.url)
                assert page.status == 503 and "All 2 sessions are in use" in await page.text()
            async with Tab(served.url) as third:
                assert await third.wait_for(lambda t: "All 2 sessions are in use" in t.text)
                await third.pump(1.0)
                assert tutors(served) == both

        # Closing a tab ends its tutor and that tutor's training worker.
        second_pids = served.seen - {tutor} - worker_tree
        assert wait_until(lambda: not alive(second_pids), ENDED_WITHIN_S), alive(second_pids)
        (second_folder,) = folders - {environ(tutor)["RNN_TUTOR_DATA_DIR"]}
        assert wait_until(lambda: not os.path.exists(second_folder), ENDED_WITHIN_S)

        first_folder = environ(tutor)["RNN_TUTOR_DATA_DIR"]
        code, out, took = served.stop(signal.SIGTERM)
    assert code == 0, out
    assert not os.path.exists(first_folder)
    assert "ending 1 session" in out and "stopped" in out
    assert took < ENDED_WITHIN_S
    assert not alive(served.seen), f"left behind: {alive(served.seen)}"
    assert "Traceback" not in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
async def test_no_process_outlives_the_server(served_factory, sig):
    """ctrl+c ends every session; even a server killed outright takes its tutors with it.
    (Tutor options pass through to each session's tutor.)"""
    served = served_factory("--max-sessions", "2", "--lesson", "2", "--fps", "2")
    async with Tab(served.url, 80, 24) as tab:
        assert await tab.wait_for(lambda t: t.text.lstrip().startswith("02 ·")), tab.text
        (tutor,) = tutors(served)
        assert cmdline(tutor)[3:] == ["--fps", "2.0", "--lesson", "2"]
        folder = environ(tutor)["RNN_TUTOR_DATA_DIR"]
        assert wait_until(lambda: len(served.tree()) >= 2, 20), served.tree()
        await asyncio.sleep(0.5)
        served.tree()
        code, out, _ = served.stop(sig)
        assert wait_until(lambda: not alive(served.seen), ENDED_WITHIN_S), alive(served.seen)
    assert code == (0 if sig == signal.SIGINT else -signal.SIGKILL), out
    assert "Traceback" not in out
    if sig == signal.SIGKILL:                  # it could not tidy up; the next server does
        assert os.path.isdir(folder)
        served_factory()
    assert not os.path.exists(folder)


async def test_a_tutor_that_dies_frees_its_tab_and_its_slot(served_factory):
    served = served_factory("--max-sessions", "1")
    async with Tab(served.url, 80, 24) as tab:
        assert await tab.wait_for(lambda t: FIRST_LESSON in t.text), tab.text
        (tutor,) = tutors(served)
        os.kill(tutor, signal.SIGKILL)
        await tab.wait_for(lambda t: t.closed, ENDED_WITHIN_S)
        assert tab.closed, "the tab stayed open on a dead tutor"
    assert wait_until(lambda: not alive(served.seen), ENDED_WITHIN_S), alive(served.seen)
    async with aiohttp.ClientSession() as http:
        assert (await http.get(served.url)).status == 200     # the slot is free again


async def test_a_reloaded_tab_gets_its_slot_back(served_factory):
    """At the cap, reloading a tab closes its session just before asking for a new one."""
    served = served_factory("--max-sessions", "1")
    async with Tab(served.url, 80, 24) as tab:
        assert await tab.wait_for(lambda t: FIRST_LESSON in t.text), tab.text
    async with aiohttp.ClientSession() as http:
        page = await http.get(served.url)            # at once, as a reload does
        assert page.status == 200, await page.text()
    async with Tab(served.url, 80, 24) as tab:
        assert await tab.wait_for(lambda t: FIRST_LESSON in t.text), tab.text
