"""Autocomplete in the lab: a `Predict` answered by the real worker from its live weights, the
session's handling of unknown words and other tasks, and the prompt through Pilot at 80×24."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tutor.engine import Run, Settings
from tutor.engine.predict import predict_next, split_words
from tutor.engine.settings import MAX_SEQ_LEN
from tutor.lab.autocomplete import GLYPHS, shade_levels
from tutor.lab.history import LabHistory
from tutor.lab.modes import TrainLab
from tutor.lab.protocol import (NextWord, Prediction, RunPrediction, RunUpdate, Update,
                                 WordSensitivity)
from tutor.lab.session import LabSession
from tutor.ui.autocomplete_screen import AutocompleteScreen, render_answers
from tutor.ui.host import HostApp
from tutor.ui.lab import LabPane
from tutor.ui.lab_charts import LossChart

SMALL = Settings(cell="lstm", task="language", seq_len=5, hidden=8, batch=4)
TEXT = "i grew up in brazil . it was windy . i speak fluent"


@pytest.fixture
def session():
    made = []

    def make(settings=SMALL, **kwargs) -> LabSession:
        s = LabSession(settings, **kwargs)
        made.append(s)
        s.start()
        return s

    yield make
    for s in made:
        s.close()


def answer(session: LabSession, text: str, timeout: float = 15.0):
    """Ask, then poll until the answer to this request is in."""
    assert session.ask(text)
    request = session._request
    deadline = time.monotonic() + timeout
    while session.prediction is None or session.prediction.request != request:
        assert time.monotonic() < deadline, "no answer"
        session.poll()
        time.sleep(0.02)
    return session.prediction


def test_the_worker_answers_from_its_current_weights(session):
    s = session(paused=True)
    first = answer(s, TEXT)
    expected = predict_next(Run(SMALL).model, Run(SMALL).task, split_words(TEXT))
    run = first.runs["main"]
    assert run.step == 0 and first.unknown == () and first.message == ""
    assert [(n.word, n.p) for n in run.next] == [(n["word"], n["p"]) for n in expected["next"]]
    assert [(w.word, w.grad_norm) for w in run.sensitivity] == \
        [(w["word"], w["grad_norm"]) for w in expected["sensitivity"]]
    s.step_once()
    deadline = time.monotonic() + 15
    while s.history.runs["main"].step < 1:
        assert time.monotonic() < deadline
        s.poll()
        time.sleep(0.02)
    later = answer(s, TEXT).runs["main"]
    assert later.step == 1
    assert [w.grad_norm for w in later.sensitivity] != [w.grad_norm for w in run.sensitivity]


def test_an_unknown_word_is_named_and_the_rest_kept(session):
    s = session(paused=True)
    p = answer(s, "I grew up in Narnia. i speak fluent narnian")
    assert p.unknown == ("narnia", "narnian")
    assert p.words == tuple("i grew up in . i speak fluent".split())
    assert [w.word for w in p.runs["main"].sensitivity] == list(p.words)
    nothing = answer(s, "zzz qqq")
    assert nothing.runs == {} and nothing.unknown == ("zzz", "qqq") and "type a sentence" in \
        nothing.message
    too_long = answer(s, "i " * (MAX_SEQ_LEN + 1))
    assert too_long.runs == {} and f"at most {MAX_SEQ_LEN}" in too_long.message


def test_compare_mode_answers_for_each_cell(session):
    s = session(paused=True)
    s.toggle_compare()
    p = answer(s, TEXT)
    assert set(p.runs) == {"rnn", "lstm", "gru"}
    tops = {name: run.next[0].word for name, run in p.runs.items()}
    assert all(len(run.next) == 3 for run in p.runs.values()), tops


def test_only_the_language_task_is_offered(session):
    s = session(Settings(cell="lstm", task="adding", seq_len=10, hidden=8), paused=True)
    assert not s.ask("i grew up in france")
    assert s.notice == "autocomplete needs the language task; this lab trains adding"


def test_shade_levels_are_relative_to_the_largest():
    sens = tuple(WordSensitivity(w, g) for w, g in
                 (("a", 0.0), ("b", 0.5), ("c", 2.0), ("d", float("nan"))))
    assert shade_levels(sens) == [0, 2, len(GLYPHS) - 1, 0]
    words = tuple(w.word for w in sens)
    run = RunPrediction(3, (NextWord("french", 0.5),), sens)
    text = render_answers(Prediction(1, 1, words, (), {"main": run}), ["main"], 80).plain
    assert text.splitlines() == ["next: french 50%", "a b c d",
                                 f"{GLYPHS[0]} {GLYPHS[2]} {GLYPHS[-1]} {GLYPHS[0]}",
                                 "leans most on: 'c'"]
    both = render_answers(Prediction(1, 1, words, (), {"rnn": run, "lstm": run}),
                          ["rnn", "lstm"], 12).plain.splitlines()
    assert both[:5] == ["rnn  french 50%", "lstm french 50%", "     a b c d", "rnn  ▁ ▃ █ ▁",
                        "lstm ▁ ▃ █ ▁"]


def test_the_history_charts_the_language_word_loss():
    h = LabHistory()
    s = SMALL
    h.reset(1, {"main": s})
    base = Run(s).baseline
    h.absorb(Update(1, {"main": RunUpdate("main", s, base, steps=[1, 2], loss=[9.0, 8.0],
                                          accuracy=[0.1, 0.2], grad_norm=[1.0, 1.0],
                                          clipped=[False, False],
                                          long_range_loss=[2.5, 2.2])}))
    run = h.runs["main"]
    assert run.charted_loss is run.long_range_loss
    assert run.charted_loss.points()[1] == [2.5, 2.2]


async def _until(pilot, condition, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def test_the_prompt_at_80x24_follows_training():
    app = HostApp(TrainLab(SMALL), "rnn-tutor lab")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LabPane)
        await _until(pilot, lambda: pane.session.started and pane.history.runs["main"].step > 2)
        chart = pane.query_one(LossChart)
        await _until(pilot, lambda: chart.plain_lines and chart.plain_lines[0].startswith(
            "loss: language word"), what="the language word's loss chart")
        assert "guess 2.3" in chart.plain_lines[0]
        assert "word loss " in pane.status_text       # the status line's loss is the same one
        await pilot.press("a")
        await _until(pilot, lambda: isinstance(app.screen, AutocompleteScreen), what="prompt")
        screen = app.screen
        await _until(pilot, lambda: screen.answer_count >= 1, what="an answer")
        shown = screen.query_one("#ac-answer").render().plain
        assert shown.startswith("next: ") and "brazil" in shown and "leans most on" in shown
        assert any(g in shown for g in GLYPHS)
        step = screen.shown.runs["main"].step
        await _until(pilot, lambda: screen.shown.runs["main"].step > step, what="a later answer")
        await pilot.press("end", *" narnia ")
        await _until(pilot, lambda: "narnia" in screen.shown.unknown, what="unknown")
        notice = screen.query_one("#ac-notice").render().plain
        assert notice.startswith("unknown word 'narnia': left out")
        assert app.screen.size == (80, 24)
        await pilot.press("escape")
        await _until(pilot, lambda: not isinstance(app.screen, AutocompleteScreen))
        await pilot.press("x")          # compare: one column per cell
        await _until(pilot, lambda: set(pane.history.runs) == {"rnn", "lstm", "gru"}
                     and all(r.step for r in pane.history.runs.values()))
        await pilot.press("a")
        await _until(pilot, lambda: isinstance(app.screen, AutocompleteScreen))
        screen = app.screen
        await _until(pilot, lambda: screen.shown is not None
                     and set(screen.shown.runs) == {"rnn", "lstm", "gru"}, what="three answers")
        shown = screen.query_one("#ac-answer").render().plain.splitlines()
        assert [line.split()[0] for line in shown[:3]] == ["rnn", "lstm", "gru"]
        assert shown[-1].startswith("leans most on: rnn ")
        assert screen.query_one("#ac-answer").region.bottom <= 23      # all of it on screen


async def test_the_key_says_in_one_line_when_the_task_is_not_language():
    app = HostApp(TrainLab(Settings(cell="rnn", task="echo", seq_len=10, hidden=8, batch=8)),
                  "rnn-tutor lab")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LabPane)
        await pilot.press("a")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, AutocompleteScreen)
        assert "autocomplete needs the language task; this lab trains echo" in pane.status_text
