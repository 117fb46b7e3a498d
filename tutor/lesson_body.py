"""A lesson's body: Markdown chunks and the ```checkpoint blocks between them.

Like the front matter (tutor/lessons.py) this is data: nothing is evaluated, and every string
meant for the screen passes through `textsafe.clean`. A broken rule raises `Invalid` with a
one-line reason that names the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import textsafe
from .predict_format import Band, Experiment, Invalid, SettingsFor, parse_prediction  # noqa: F401

MAX_CHECKPOINTS = 3
MIN_OPTIONS, MAX_OPTIONS = 2, 6
_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def quote(text: str, limit: int = 40) -> str:
    """A short, terminal-safe quotation of file content for an error message."""
    text = textsafe.clean(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "'" + text + "'"


@dataclass(frozen=True)
class Option:
    text: str
    correct: bool
    feedback: str
    band: Band | None = None          # a prediction's range of the measured value


@dataclass(frozen=True)
class Checkpoint:
    id: str
    ask: str
    options: list[Option]
    experiment: Experiment | None = None   # set for a ```predict checkpoint

    @property
    def predicts(self) -> bool:
        return self.experiment is not None

    def outcome(self, value: float) -> int | None:
        """The option whose range holds a measured value (None for a plain checkpoint)."""
        return next((i for i, o in enumerate(self.options)
                     if o.band is not None and o.band.contains(value)), None)


def parse_body(lines: list[str], first_line: int, settings_for: SettingsFor | None = None
               ) -> tuple[list, list[Checkpoint], bool, list[str]]:
    """Split the body into parts; return them with the checkpoints, whether cleaning changed any
    text, and warnings. `settings_for` turns a ```predict block's `run:` changes into the
    experiment's settings (raising Invalid); without it a ```predict block is refused."""
    parts: list[str | Checkpoint] = []
    checkpoints: list[Checkpoint] = []
    warnings: list[str] = []
    first_seen: dict[str, int] = {}
    chunk: list[str] = []
    dirty = False

    def flush() -> None:
        nonlocal dirty
        text = "\n".join(chunk).strip("\n")
        chunk.clear()
        if text.strip():
            cleaned = textsafe.clean(text)
            dirty |= cleaned != text
            parts.append(cleaned)

    i = 0
    while i < len(lines):
        fence = _FENCE_RE.fullmatch(lines[i].rstrip())
        if fence is None:
            chunk.append(lines[i])
            i += 1
            continue
        marker, info = fence.group(1), fence.group(2).strip()
        if marker[0] == "`" and "`" in info:   # CommonMark: not a fence, e.g. ```inline```
            chunk.append(lines[i])
            i += 1
            continue
        close = _closing_fence(lines, i + 1, marker)
        kind = info.lower()
        if kind not in ("checkpoint", "predict"):
            # An ordinary code block: keep it verbatim, and do not look for checkpoints inside it.
            if close is None:
                warnings.append(f"line {first_line + i}: this code block is never closed, "
                                "so the rest of the lesson shows as code")
            stop = len(lines) if close is None else close + 1
            chunk.extend(lines[i:stop])
            i = stop
            continue
        lineno = first_line + i
        if close is None:
            raise Invalid(f"line {lineno}: the {kind} block is never closed with {marker}")
        checkpoint, cp_dirty = _parse_checkpoint(lines[i + 1:close], lineno, kind, settings_for)
        dirty |= cp_dirty
        if checkpoint.id in first_seen:
            raise Invalid(f"line {lineno}: checkpoint id {checkpoint.id!r} is used twice "
                           f"(first on line {first_seen[checkpoint.id]})")
        first_seen[checkpoint.id] = lineno
        checkpoints.append(checkpoint)
        if len(checkpoints) > MAX_CHECKPOINTS:
            raise Invalid(f"line {lineno}: more than {MAX_CHECKPOINTS} checkpoints; "
                           f"a lesson has at most {MAX_CHECKPOINTS}")
        flush()
        parts.append(checkpoint)
        i = close + 1
    flush()
    return parts, checkpoints, dirty, warnings


def _closing_fence(lines: list[str], start: int, marker: str) -> int | None:
    for j in range(start, len(lines)):
        stripped = lines[j].strip()
        if (len(lines[j]) - len(lines[j].lstrip(" ")) <= 3 and stripped
                and set(stripped) == {marker[0]} and len(stripped) >= len(marker)):
            return j
    return None


def _parse_checkpoint(lines: list[str], start_line: int, kind: str = "checkpoint",
                      settings_for: SettingsFor | None = None) -> tuple[Checkpoint, bool]:
    """Parse the inside of a ```checkpoint or ```predict block that opens on `start_line`."""
    predict = kind == "predict"
    fields: dict[str, tuple[str, int]] = {}
    # (text, correct, feedback lines, line, band lines as (text, line))
    options: list[tuple[str, bool, list[str], int, list[tuple[str, int]]]] = []
    where = f"{kind} on line {start_line}"
    names = ("id", "ask", "run", "measure") if predict else ("id", "ask")
    expected = ("'id:', 'ask:', 'run:', 'measure:', '+ option', '- option', '  = range' or "
                "'  > feedback'") if predict else \
        "'id:', 'ask:', '+ option', '- option' or '  > feedback'"
    for offset, line in enumerate(lines, start=start_line + 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            if not options:
                raise Invalid(f"line {offset}: feedback '>' comes before any option")
            options[-1][2].append(stripped[1:].strip())
            continue
        if predict and stripped.startswith("=") and line[0].isspace():
            if not options:
                raise Invalid(f"line {offset}: a range '=' comes before any option")
            options[-1][4].append((stripped[1:].strip(), offset))
            continue
        option = re.fullmatch(r"([+-])\s+(\S.*)", stripped)
        if option and not line[0].isspace():
            options.append((option.group(2).strip(), option.group(1) == "+", [], offset, []))
            continue
        field_match = re.fullmatch(r"([a-z]+)\s*:\s*(.*)", stripped)
        if field_match and field_match.group(1) in names and not line[0].isspace():
            name, value = field_match.groups()
            if name in fields:
                raise Invalid(f"line {offset}: {where} has a second {name!r} line")
            fields[name] = (value.strip(), offset)
            continue
        raise Invalid(f"line {offset}: unexpected line in {where}: {quote(stripped)}; "
                       f"expected {expected}")

    qid = fields.get("id", ("", 0))[0]
    if not qid:
        raise Invalid(f"{where} has no 'id:' line")
    if not _ID_RE.fullmatch(qid):
        raise Invalid(f"{where}: id {quote(qid)} must use only a-z, 0-9 and '-'")
    if not fields.get("ask", ("", 0))[0]:
        raise Invalid(f"{where} has no 'ask:' line")
    if len(options) < MIN_OPTIONS:
        raise Invalid(f"{where} has {len(options)} option(s); it needs at least {MIN_OPTIONS}")
    if len(options) > MAX_OPTIONS:
        raise Invalid(f"{where} has {len(options)} options; the limit is {MAX_OPTIONS}")
    correct_count = sum(correct for _, correct, _, _, _ in options)
    if not correct_count:
        raise Invalid(f"{where} has no correct option; mark one with '+ '" + (
            " (the outcome you expect the run to show)" if predict else ""))
    if predict and correct_count > 1:
        raise Invalid(f"{where} marks {correct_count} options with '+ '; a prediction expects "
                       "exactly one outcome")
    for text, _, feedback, lineno, _ in options:
        if not any(feedback):
            raise Invalid(f"line {lineno}: the option has no '  > ' feedback line after it")

    experiment, bands = None, [None] * len(options)
    if predict:
        if settings_for is None:
            raise Invalid(f"{where}: prediction checkpoints need a lesson with a training lab")
        experiment, bands = parse_prediction(
            where, start_line, fields, [(lineno, band) for _, _, _, lineno, band in options],
            settings_for)

    dirty = False

    def shown(text: str) -> str:
        nonlocal dirty
        cleaned = textsafe.clean(text)
        dirty |= cleaned != text
        return cleaned

    built = [Option(shown(text), correct, shown(_join_feedback(feedback)), band)
             for (text, correct, feedback, _, _), band in zip(options, bands)]
    return Checkpoint(qid, shown(fields["ask"][0]), built, experiment), dirty


def _join_feedback(lines: list[str]) -> str:
    """Feedback lines join like a Markdown paragraph; a bare '>' line starts a new paragraph."""
    paragraphs, current = [], []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)
