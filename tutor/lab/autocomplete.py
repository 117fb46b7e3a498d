"""Autocomplete in the lab: the live models' next word after a typed sentence.

The training process answers a `Predict` with `predict_runs`, from each run's weights as they
are at that moment, so the UI never holds a model. The view shades each typed word by its
sensitivity with `shade_levels`, a scale that also reads as glyphs without colour.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from tutor.engine.predict import predict_next, split_known, split_words, vocabulary
from tutor.engine.run import Run
from tutor.engine.settings import MAX_SEQ_LEN
from tutor.engine.tasks import get_task

from .protocol import NextWord, Predict, Prediction, RunPrediction, WordSensitivity

GLYPHS = "▁▂▃▄▅▆▇█"          # sensitivity from low to the sentence's highest
# The prompt's first sentence: the country 30 words before the language word, as in the lesson.
EXAMPLE = ("i grew up in brazil . on friday my cousin sold the old bike . it was windy . "
           "my friends called . we drove to the lake . these days i speak fluent")


def offers_autocomplete(task: str) -> bool:
    """Only the language task: its inputs and outputs are words, one next word per step."""
    return task == "language"


def predict_runs(request: Predict, generation: int, runs: Mapping[str, Run]) -> Prediction:
    """Each run's top three next words after `request.text`, and each known word's sensitivity.
    Unknown words are left out and named; the rest are kept."""
    words = split_words(request.text)
    tasks = {run.task.name for run in runs.values()}
    task = get_task(next(iter(tasks))) if tasks else None
    if task is None or vocabulary(task) is None or not offers_autocomplete(task.name):
        name = task.name if task is not None else "no"
        return Prediction(generation, request.request, (), (), {},
                          f"autocomplete needs the language task; this is the {name} task")
    known, unknown = split_known(task, words)
    if not known:
        return Prediction(generation, request.request, (), tuple(unknown), {},
                          "type a sentence in the task's words, e.g. "
                          "i grew up in brazil . i speak fluent")
    if len(known) > MAX_SEQ_LEN:
        return Prediction(generation, request.request, (), tuple(unknown), {},
                          f"that is {len(known)} words; autocomplete reads at most {MAX_SEQ_LEN}")
    answers = {name: _answer(run, task, known) for name, run in runs.items()}
    return Prediction(generation, request.request, tuple(known), tuple(unknown), answers)


def _answer(run: Run, task, words: list[str]) -> RunPrediction:
    if run.diverged:
        return RunPrediction(step=run.steps, status="diverged")
    answer = predict_next(run.model, task, words)
    return RunPrediction(
        step=run.steps,
        next=tuple(NextWord(a["word"], a["p"]) for a in answer["next"]),
        sensitivity=tuple(WordSensitivity(a["word"], a["grad_norm"])
                          for a in answer["sensitivity"]))


def shade_levels(sensitivity: tuple[WordSensitivity, ...], levels: int = len(GLYPHS)
                 ) -> list[int]:
    """Each word's sensitivity on a scale 0..levels-1, relative to the sentence's largest (which
    gets the top level). Linear: a word with a tenth of the largest sits near the bottom."""
    norms = np.asarray([s.grad_norm for s in sensitivity], dtype=np.float64)
    if norms.size == 0:
        return []
    norms = np.where(np.isfinite(norms), norms, 0.0)
    top = float(norms.max())
    if not top > 0 or not math.isfinite(top):
        return [0] * len(norms)
    return [int(round(v)) for v in norms / top * (levels - 1)]
