"""The parts of a ```predict checkpoint beyond a plain one: the experiment it runs (`run:`), the
measurement it grades by (`measure:`), and the range of that measurement each option stands for
(`  = below 1e-6`, `  = 1e-6 to 0.3`, `  = above 0.3`). Data only: measurements are names from
`tutor.lab.measures.MEASURES`, checked here; a broken rule raises `Invalid` naming the line.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable

from .engine.settings import Settings
from .lab.measures import MEASURES, NO_ACCURACY_TASKS

MAX_STEP = 3000          # a prediction's run must finish while the learner waits
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?"
_BAND_RE = re.compile(rf"(?:below\s+({_NUMBER})|above\s+({_NUMBER})|({_NUMBER})\s+to\s+({_NUMBER}))")
_MEASURE_RE = re.compile(r"([A-Za-z_]+)\s+at\s+step\s+(\d{1,6})")

# (raw run: changes as key -> (value, line)) -> the experiment's full settings; raises Invalid
SettingsFor = Callable[[dict[str, tuple[str, int]]], Settings]


class Invalid(Exception):
    """A rule broken inside one file; the message becomes the BrokenLesson reason (defined here,
    re-exported by tutor.lesson_body and tutor.lessons)."""


@dataclass(frozen=True)
class Band:
    """The range [low, high) of a measured value; None is unbounded."""
    low: float | None
    high: float | None

    def contains(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)

    def describe(self) -> str:
        if self.low is None:
            return f"below {self.high:g}"
        if self.high is None:
            return f"{self.low:g} or above"
        return f"{self.low:g} to {self.high:g}"


@dataclass(frozen=True)
class Experiment:
    """What a prediction runs and reads: the lab's settings, a measurement and its step."""
    settings: Settings
    measure: str
    step: int
    changes: tuple[tuple[str, str], ...] = ()   # the run: line's changes, as written


def parse_prediction(where: str, start_line: int, fields: dict[str, tuple[str, int]],
                     option_bands: list[tuple[int, list[tuple[str, int]]]],
                     settings_for: SettingsFor) -> tuple[Experiment, list[Band]]:
    raw_run, run_line = fields.get("run", ("", start_line))
    changes = _run_changes(raw_run, run_line)
    settings = settings_for({key: (value, run_line) for key, value in changes})
    if "measure" not in fields:
        raise Invalid(f"{where} has no 'measure:' line, e.g. 'measure: grad_ratio at step 0'")
    name, step = _measure(*fields["measure"], settings)
    bands = [_band(where, lineno, lines) for lineno, lines in option_bands]
    _check_cover(where, bands)
    return Experiment(settings, name, step, tuple(changes)), bands


def _run_changes(text: str, lineno: int) -> list[tuple[str, str]]:
    changes: list[tuple[str, str]] = []
    for token in text.replace(",", " ").split():
        key, eq, value = token.partition("=")
        if not eq or not key or not value:
            raise Invalid(f"line {lineno}: run: takes key=value changes such as "
                           f"'cell=lstm seq_len=100', not {token[:40]!r}")
        if any(key == k for k, _ in changes):
            raise Invalid(f"line {lineno}: run: sets {key!r} twice")
        changes.append((key, value))
    return changes


def _measure(text: str, lineno: int, settings: Settings) -> tuple[str, int]:
    match = _MEASURE_RE.fullmatch(text)
    if match is None:
        raise Invalid(f"line {lineno}: measure: must be 'NAME at step N', e.g. "
                       f"'grad_ratio at step 0', not {text[:40]!r}")
    name, step = match.group(1).lower(), int(match.group(2))
    measure = MEASURES.get(name)
    if measure is None:
        close = difflib.get_close_matches(name, MEASURES, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(MEASURES)
        raise Invalid(f"line {lineno}: unknown measurement {name[:40]!r}; {hint}")
    if measure.at_start and step != 0:
        raise Invalid(f"line {lineno}: {name} is read at step 0 only (the initial weights)")
    if not measure.at_start and not 1 <= step <= MAX_STEP:
        raise Invalid(f"line {lineno}: {name} is read at a step from 1 to {MAX_STEP}, not {step}")
    if measure.cells and settings.cell not in measure.cells:
        raise Invalid(f"line {lineno}: {name} exists only for cell {' or '.join(measure.cells)}, "
                       f"and this experiment runs {settings.cell}")
    if measure.needs_accuracy and settings.task in NO_ACCURACY_TASKS:
        raise Invalid(f"line {lineno}: the {settings.task} task has no accuracy; "
                       "measure loss instead")
    return name, step


def _number(text: str, lineno: int) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not math.isfinite(value):
        raise Invalid(f"line {lineno}: a range bound must be a finite number")
    return value


def _band(where: str, option_line: int, lines: list[tuple[str, int]]) -> Band:
    if not lines:
        raise Invalid(f"line {option_line}: the option has no '  = ' range line "
                       "('= below X', '= X to Y' or '= above X')")
    if len(lines) > 1:
        raise Invalid(f"line {lines[1][1]}: the option has a second '=' range line")
    text, lineno = lines[0]
    match = _BAND_RE.fullmatch(text.strip())
    if match is None:
        raise Invalid(f"line {lineno}: a range is '= below X', '= X to Y' or '= above X', "
                       f"not {text[:40]!r}")
    below, above, low, high = match.groups()
    if below is not None:
        return Band(None, _number(below, lineno))
    if above is not None:
        return Band(_number(above, lineno), None)
    band = Band(_number(low, lineno), _number(high, lineno))
    if band.low >= band.high:
        raise Invalid(f"line {lineno}: the range {text.strip()!r} is empty; write the smaller "
                       "bound first")
    return band


def _check_cover(where: str, bands: list[Band]) -> None:
    """Every value must fall in exactly one option's range: the ranges tile the number line."""
    ordered = sorted(bands, key=lambda b: -math.inf if b.low is None else b.low)
    if ordered[0].low is not None:
        raise Invalid(f"{where}: no option covers values below {ordered[0].low:g}; "
                       "make the lowest range '= below X'")
    if ordered[-1].high is not None:
        raise Invalid(f"{where}: no option covers values from {ordered[-1].high:g} up; "
                       "make the highest range '= above X'")
    for lower, upper in zip(ordered, ordered[1:]):
        if lower.high is None or upper.low is None or lower.high != upper.low:
            raise Invalid(f"{where}: the ranges {lower.describe()!r} and {upper.describe()!r} "
                           "must meet exactly, so every value falls in one option")
