"""The lesson loader: the file format contract, validation of bad files, and safe display text."""
import dataclasses
import os
import re
from pathlib import Path

import pytest

from tutor import lessons as L
from tutor.engine.settings import (MAX_BATCH, MAX_CLIP, MAX_FORGET_BIAS, MAX_HIDDEN, MAX_LR,
                                   MAX_RADIUS, MAX_SEED, MAX_SEQ_LEN, Settings)
from tutor.lab.modes import MapLab, TrainLab, WorkedLab
from tutor.lessons import (Checkpoint, LessonsError, find_lesson, format_listing, load_lessons)

GOOD = """---
title: A good lesson
cell: gru
---
# Hello

Some text.
"""

CHECKPOINT = """```checkpoint
id: {qid}
ask: Will it rise?
+ It rises.
  > Right, because the additive path keeps it.
- It falls.
  > Watch the left end of the curve.
```
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def front(*lines: str, body: str = "Body.\n") -> str:
    return "---\n" + "".join(line + "\n" for line in lines) + "---\n" + body


def load_one(tmp_path: Path, text: str | bytes, name: str = "01-one.md"):
    write(tmp_path, name, text)
    result = load_lessons(tmp_path)
    assert len(result.lessons) + len(result.broken) == 1
    return result


def reason_for(tmp_path: Path, text: str | bytes) -> str:
    result = load_one(tmp_path, text)
    assert not result.lessons, "expected the lesson to be broken"
    reason = result.broken[0].reason
    assert "\n" not in reason
    return reason


# ---- a whole folder of bad files: each listed with its reason, the good ones still load --------

BAD_FILES = {
    "02-no-front-matter.md": ("# Just markdown\n", "missing front matter"),
    "03-unclosed.md": ("---\ntitle: x\ncell: rnn\n", "never closed"),
    "04-not-key-value.md": (front("title: x", "this is not a pair"), "line 3 is not 'key: value'"),
    "05-unknown-key.md": (front("title: x", "optimiser: sgd"),
                          "line 3: unknown key 'optimiser'; did you mean 'optimizer'?"),
    "06-wrong-type.md": (front("title: x", "lr: fast"), "line 3: lr must be a number, not 'fast'"),
    "07-t-zero.md": (front("title: x", "seq_len: 0"),
                     f"line 3: sequence length must be between 1 and {MAX_SEQ_LEN}, not 0"),
    "08-lr-negative.md": (front("title: x", "lr: -1"), "line 3: learning rate must be above 0"),
    "09-hidden-huge.md": (front("title: x", "hidden: 1000000"),
                          f"line 3: hidden size must be between 1 and {MAX_HIDDEN}, not 1000000"),
    "10-empty.md": ("", "empty file"),
    "11-binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "binary file"),
    "12-huge.md": ("---\ntitle: x\n---\n" + "padding line\n" * (5 * 1024 * 1024 // 13),
                   "lesson is 5.0 MiB; the limit is 256 KiB"),
    "13-latin1.md": ("---\ntitle: café\n---\n".encode("latin-1"),
                     "not UTF-8 text (byte 0xe9 on line 2)"),
    "14-no-title.md": (front("cell: rnn"), "missing title"),
}


def test_a_folder_of_bad_files_lists_each_with_its_reason_and_loads_the_rest(tmp_path):
    write(tmp_path, "01-good.md", GOOD)
    write(tmp_path, "15-also-good.md", GOOD.replace("A good lesson", "Another"))
    for name, (text, _) in BAD_FILES.items():
        write(tmp_path, name, text)

    result = load_lessons(tmp_path)

    assert [lesson.name for lesson in result.lessons] == ["01-good", "15-also-good"]
    reasons = {b.name: b.reason for b in result.broken}
    assert set(reasons) == set(BAD_FILES)
    for name, (_, expected) in BAD_FILES.items():
        assert expected in reasons[name], (name, reasons[name])
        assert "\n" not in reasons[name]


# ---- front matter values ---------------------------------------------------------------------

def test_preset_takes_engine_defaults_for_missing_keys(tmp_path):
    lesson = load_one(tmp_path, GOOD).lessons[0]
    assert lesson.settings == Settings(cell="gru")
    assert lesson.preset_fields == {"cell"}
    assert lesson.mode == "train"
    assert lesson.title == "A good lesson"
    assert (lesson.number, lesson.slug, lesson.name) == (1, "one", "01-one")


def test_every_value_form_parses_to_the_engine_type(tmp_path):
    text = front(
        "# a comment line",
        "title: 'Exploding gradients # and the map'   # quoted, so the # stays",
        "cell: RNN",
        "task: adding",
        "seq_len: 60",
        "hidden: 16",
        "batch: 8",
        "optimizer: sgd",
        "lr: 1e-1",
        "clip: 2.5",
        "clip_mode: value",
        "init: orthogonal",
        "radius: 1.5   # spectral radius",
        "forget_bias: -2",
        "reverse_input: yes",
        "freeze_head: On",
        "seed: 7",
        "dtype: float64",
        "truncate: 12",
    )
    lesson = load_one(tmp_path, text).lessons[0]
    assert lesson.title == "Exploding gradients # and the map"
    assert lesson.settings == Settings(
        cell="rnn", task="adding", seq_len=60, hidden=16, batch=8, optimizer="sgd", lr=0.1,
        clip=2.5, clip_mode="value", init="orthogonal", radius=1.5, forget_bias=-2.0,
        reverse_input=True, freeze_head=True, seed=7, dtype="float64", truncate=12)
    assert lesson.preset_fields == {f.name for f in dataclasses.fields(Settings)}
    assert isinstance(lesson.settings.forget_bias, float)


@pytest.mark.parametrize("value, expected", [("off", 0.0), ("none", 0.0), ("0", 0.0), ("1", 1.0)])
def test_clip_accepts_off_none_or_a_threshold(tmp_path, value, expected):
    lesson = load_one(tmp_path, front("title: x", f"clip: {value}")).lessons[0]
    assert lesson.settings.clip == expected


@pytest.mark.parametrize("value, expected", [("none", None), ("off", None), ("2", 2.0)])
def test_radius_accepts_none_or_a_number(tmp_path, value, expected):
    lesson = load_one(tmp_path, front("title: x", f"radius: {value}")).lessons[0]
    assert lesson.settings.radius == expected


@pytest.mark.parametrize("value, expected", [("none", None), ("off", None), ("0", None),
                                             ("10", 10)])
def test_truncate_accepts_off_none_zero_or_whole_steps(tmp_path, value, expected):
    lesson = load_one(tmp_path, front("title: x", f"truncate: {value}")).lessons[0]
    assert lesson.settings.truncate == expected


@pytest.mark.parametrize("value, expected", [("true", True), ("no", False), ("OFF", False),
                                             ("Yes", True)])
def test_booleans(tmp_path, value, expected):
    lesson = load_one(tmp_path, front("title: x", f"reverse_input: {value}")).lessons[0]
    assert lesson.settings.reverse_input is expected


def test_every_settings_field_is_a_front_matter_key(tmp_path):
    """A new engine setting must be writable in a lesson without touching the loader."""
    defaults = Settings()
    lines = ["title: x"]
    for f in dataclasses.fields(Settings):
        value = getattr(defaults, f.name)
        lines.append(f"{f.name}: {'none' if value is None else str(value).lower()}")
    lesson = load_one(tmp_path, front(*lines)).lessons[0]
    assert lesson.settings == defaults
    assert lesson.preset_fields == {f.name for f in dataclasses.fields(Settings)}


def test_windows_line_endings_and_a_byte_order_mark_are_accepted(tmp_path):
    text = "\ufeff" + front("title: Crlf", "cell: lstm", body="Line one.\nLine two.\n")
    lesson = load_one(tmp_path, text.replace("\n", "\r\n")).lessons[0]
    assert lesson.title == "Crlf"
    assert lesson.parts == ["Line one.\nLine two."]
    assert lesson.warnings == []


@pytest.mark.parametrize("line, expected", [
    ("lr: nan", "line 3: lr must be a finite number, not 'nan'"),
    ("lr: inf", "line 3: lr must be a finite number"),
    ("lr: -Infinity", "line 3: lr must be a finite number"),
    ("lr: 1e999", "line 3: lr must be a finite number"),
    ("seq_len: 50.0", "line 3: seq_len must be a whole number, not '50.0'"),
    ("seq_len: fifty", "line 3: seq_len must be a whole number"),
    ("seq_len: " + "9" * 5000, "line 3: seq_len is far too large"),
    ("hidden: 1e6", "line 3: hidden must be a whole number"),
    ("reverse_input: maybe", "line 3: reverse_input must be true or false, not 'maybe'"),
    ("cell: transformer", "line 3: unknown cell 'transformer'"),
    ("task: translate", "line 3: unknown task 'translate'"),
    ("clip: -1", "line 3: clip threshold must be at least 0"),
    ("radius: 0", "line 3: radius must be above 0"),
    ("seed: -1", f"line 3: seed must be between 0 and {MAX_SEED}"),
    ("lr:", "line 3: lr has no value"),
    ("mode: movie", "line 3: mode must be one of train, worked, map, none, not 'movie'"),
    ("title: again", "line 3: duplicate key 'title' (first set on line 2)"),
    ("Cell: rnn", "line 3: unknown key 'Cell'; did you mean 'cell'?"),
    ("T: 50", "line 3: unknown key 'T'; did you mean 'seq_len'?"),
    ("zzzz: 1", "line 3: unknown key 'zzzz'; known keys: title, mode, cell"),
    ("cell:rnn", "put a space after the colon"),
    ("  cell: rnn", "line 3: indented lines are not allowed"),
    ("cell: [rnn, lstm]", "line 3: lists and mappings are not allowed"),
    ("title2: |", "line 3: unknown key"),
    ("cell: |", "line 3: multi-line values are not allowed"),
    ("cell: 'rnn", "line 3: the quote ' is never closed"),
    ("cell: 'rnn' lstm", "unexpected text after the closing quote"),
])
def test_bad_values_name_the_line_and_the_problem(tmp_path, line, expected):
    reason = reason_for(tmp_path, front("title: x", line))
    assert expected in reason


def test_a_clash_between_keys_is_reported_for_the_front_matter(tmp_path):
    reason = reason_for(tmp_path, front("title: x", "task: echo", "seq_len: 1"))
    assert reason.startswith("front matter: the echo task needs a sequence length of at least")


@pytest.mark.parametrize("title_line, expected", [
    ("title:", "the title is empty"),
    ("title: ''", "the title is empty"),
    ("title: " + "x" * 200, "the title is 200 characters; the limit is 120"),
])
def test_title_rules(tmp_path, title_line, expected):
    assert expected in reason_for(tmp_path, front(title_line))


def test_empty_and_whitespace_only_files_are_broken(tmp_path):
    assert reason_for(tmp_path, "  \n\n\t\n") == "empty file"


def test_a_size_just_under_the_limit_loads(tmp_path):
    head = "---\ntitle: Long\n---\n"
    text = head + "x" * (L.MAX_LESSON_BYTES - len(head))
    assert len(load_one(tmp_path, text).lessons) == 1
    assert "the limit is 256 KiB" in reason_for(tmp_path, text + "y")


# ---- nothing in a lesson is ever executed ------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ('title: !!python/object/apply:os.system ["touch {canary}"]', "YAML tags"),
    ('cell: !!python/object/apply:os.system ["touch {canary}"]', "YAML tags"),
    ("!!python/object/apply:os.system: touch {canary}", "YAML tags"),
    ("cell: &a rnn", "YAML anchors"),
    ("cell: *a", "YAML aliases"),
    ("title: !binary aGVsbG8=", "YAML tags"),
])
def test_yaml_tags_anchors_and_aliases_are_refused_and_nothing_runs(tmp_path, line, expected):
    canary = tmp_path / "pwned"
    lessons_dir = tmp_path / "lessons"
    lessons_dir.mkdir()
    lines = [line] if line.startswith("title") else ["title: x", line]
    reason = reason_for(lessons_dir, front(*(text.format(canary=canary) for text in lines)))
    assert expected in reason
    assert not canary.exists()


def test_quoted_yaml_looking_text_is_just_text(tmp_path):
    lesson = load_one(tmp_path, front("title: '*Why* RNNs forget'")).lessons[0]
    assert lesson.title == "*Why* RNNs forget"


# ---- control characters never reach the screen ----------------------------------------------------

ESCAPES = ["\x1b]52;c;cm0gLXJmIH4=\x07", "\x1b[2J", "\x1b]0;pwned\x07", "\x9b2J", "\u202e"]


def displayed_strings(lesson) -> list[str]:
    strings = [lesson.title, *lesson.warnings]
    for part in lesson.parts:
        if isinstance(part, Checkpoint):
            strings.append(part.ask)
            for option in part.options:
                strings += [option.text, option.feedback]
        else:
            strings.append(part)
    return strings


def test_escape_sequences_load_with_a_warning_and_never_reach_any_displayed_string(tmp_path):
    osc52, clear, title_change, c1, bidi = ESCAPES
    checkpoint = (
        "```checkpoint\n"
        f"id: q1\nask: Clear {clear} the screen?\n"
        f"+ Yes {osc52}\n  > Feedback {title_change}\n"
        f"- No {c1}\n  > Wrong {bidi}\n"
        "```\n")
    text = front(f"title: Title {title_change} here", body=f"Intro {osc52} and {clear}.\n\n{checkpoint}")
    write(tmp_path, "01-escapes.md", text)
    write(tmp_path, "02-plain.md", GOOD)

    result = load_lessons(tmp_path)

    assert not result.broken
    lesson, plain = result.lessons
    assert lesson.warnings == [L.CONTROL_WARNING]
    assert plain.warnings == []
    shown = displayed_strings(lesson) + [format_listing(result)]
    for string in shown:
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in string
    assert "␛]52;c;cm0gLXJmIH4=␇" in lesson.parts[0]
    assert lesson.title == "Title ␛]0;pwned␇ here"


def test_control_characters_in_file_names_and_bad_keys_are_cleaned_in_reasons(tmp_path):
    write(tmp_path, "bad\x1b[2J.md", GOOD)
    write(tmp_path, "01-key.md", front("title: x", "\x1b]0;t\x07: 1"))
    result = load_lessons(tmp_path)
    listing = format_listing(result)
    assert "\x1b" not in listing and "\x07" not in listing
    assert {b.name for b in result.broken} == {"01-key.md", "bad␛[2J.md"}


# ---- checkpoints ----------------------------------------------------------------------------------

def test_parts_interleave_text_and_checkpoints_in_file_order(tmp_path):
    body = ("Intro.\n\n" + CHECKPOINT.format(qid="first") + "\nMiddle.\n\n"
            + CHECKPOINT.format(qid="second") + CHECKPOINT.format(qid="third") + "\nEnd.\n")
    lesson = load_one(tmp_path, front("title: x", body=body)).lessons[0]
    kinds = [p if isinstance(p, str) else p.id for p in lesson.parts]
    assert kinds == ["Intro.", "first", "Middle.", "second", "third", "End."]
    assert [c.id for c in lesson.checkpoints] == ["first", "second", "third"]
    first = lesson.checkpoints[0]
    assert first.ask == "Will it rise?"
    assert [(o.text, o.correct) for o in first.options] == [("It rises.", True), ("It falls.", False)]
    assert first.options[0].feedback == "Right, because the additive path keeps it."


def test_feedback_lines_join_into_paragraphs(tmp_path):
    block = ("```checkpoint\nid: q\nask: Pick one\n"
             "+ A\n  > First line\n  > continues here.\n  >\n  > New paragraph.\n"
             "- B\n  > No.\n+ C\n  > Also right.\n```\n")
    checkpoint = load_one(tmp_path, front("title: x", body=block)).lessons[0].checkpoints[0]
    assert checkpoint.options[0].feedback == "First line continues here.\n\nNew paragraph."
    assert [o.correct for o in checkpoint.options] == [True, False, True]


def test_a_checkpoint_inside_another_code_block_is_shown_as_code(tmp_path):
    body = "````markdown\n" + CHECKPOINT.format(qid="example") + "````\n\n" + CHECKPOINT.format(qid="real")
    lesson = load_one(tmp_path, front("title: x", body=body)).lessons[0]
    assert [c.id for c in lesson.checkpoints] == ["real"]
    assert "id: example" in lesson.parts[0]


def test_an_unclosed_code_block_loads_with_a_warning(tmp_path):
    lesson = load_one(tmp_path, front("title: x", body="Text.\n\n```python\nx = 1\n")).lessons[0]
    assert len(lesson.warnings) == 1
    assert "line 6: this code block is never closed" in lesson.warnings[0]


def options(n: int, correct: int = 1) -> str:
    return "".join(f"{'+' if i < correct else '-'} Option {i}\n  > Because {i}.\n" for i in range(n))


@pytest.mark.parametrize("block, expected", [
    ("ask: Q?\n" + options(2), "checkpoint on line 4 has no 'id:' line"),
    ("id: q\n" + options(2), "checkpoint on line 4 has no 'ask:' line"),
    ("id: q\nask: Q?\n" + options(1), "has 1 option(s); it needs at least 2"),
    ("id: q\nask: Q?\n" + options(7), "has 7 options; the limit is 6"),
    ("id: q\nask: Q?\n" + options(3, correct=0), "has no correct option"),
    ("id: Bad_Id\nask: Q?\n" + options(2), "id 'Bad_Id' must use only a-z, 0-9 and '-'"),
    ("id: q\nask: Q?\n+ A\n- B\n  > No.\n", "line 7: the option has no '  > ' feedback line"),
    ("id: q\nask: Q?\n  > early\n" + options(2), "line 7: feedback '>' comes before any option"),
    ("id: q\nid: r\nask: Q?\n" + options(2), "line 6: checkpoint on line 4 has a second 'id' line"),
    ("id: q\nask: Q?\nstray text\n" + options(2), "line 7: unexpected line in checkpoint on line 4"),
])
def test_bad_checkpoint_blocks_are_broken_with_a_reason(tmp_path, block, expected):
    text = front("title: x", body="```checkpoint\n" + block + "```\n")
    assert expected in reason_for(tmp_path, text)


def test_duplicate_ids_too_many_checkpoints_and_unclosed_blocks(tmp_path):
    twice = CHECKPOINT.format(qid="same") + CHECKPOINT.format(qid="same")
    assert "checkpoint id 'same' is used twice (first on line 4)" in reason_for(
        tmp_path, front("title: x", body=twice))
    four = "".join(CHECKPOINT.format(qid=f"q{i}") for i in range(4))
    assert "more than 3 checkpoints" in reason_for(tmp_path, front("title: x", body=four))
    unclosed = CHECKPOINT.format(qid="q").rstrip().removesuffix("```")
    assert "line 4: the checkpoint block is never closed" in reason_for(
        tmp_path, front("title: x", body=unclosed))


# ---- modes -------------------------------------------------------------------------------------

def test_mode_extras(tmp_path):
    write(tmp_path, "01-worked.md", front("title: W", "mode: worked", "worked_cell: LSTM"))
    write(tmp_path, "02-map.md", front("title: M", "mode: map", "map: sigmoid", "map_w: 8",
                                       "map_b: -4", "map_x0: 0.5"))
    write(tmp_path, "03-map-defaults.md", front("title: D", "mode: map"))
    write(tmp_path, "04-none.md", front("title: N", "mode: none"))
    write(tmp_path, "05-budget.md", front("title: B", "cell: gru", "budget: 5000"))
    worked, cobweb, defaults, reading, budget = load_lessons(tmp_path).lessons
    assert (worked.mode, worked.lab) == ("worked", WorkedLab("lstm"))
    assert cobweb.lab == MapLab("sigmoid", 8.0, -4.0, 0.5)
    assert defaults.lab == MapLab()
    assert reading.mode == "none" and reading.lab is None
    assert budget.lab == TrainLab(Settings(cell="gru"), 5000)


@pytest.mark.parametrize("lines, expected", [
    (("mode: worked", "worked_cell: irnn"), "worked_cell must be one of rnn, lstm, gru"),
    (("mode: map", "map: relu"), "map must be one of tanh, sigmoid"),
    (("mode: map", "map_w: 51"), "map_w must be between -50 and 50, not 51"),
    (("mode: map", "map_x0: nan"), "map_x0 must be a finite number"),
    (("map_w: 2",), "line 3: 'map_w' applies only with 'mode: map'"),
    (("mode: map", "worked_cell: gru"), "'worked_cell' applies only with 'mode: worked'"),
    (("budget: 0",), "budget must be a whole number of steps from 1 to 1000000, not '0'"),
    (("budget: 2.5",), "budget must be a whole number of steps"),
    (("mode: map", "budget: 100"), "'budget' applies only with 'mode: train'"),
])
def test_bad_mode_extras(tmp_path, lines, expected):
    assert expected in reason_for(tmp_path, front("title: x", *lines))


# ---- the folder ----------------------------------------------------------------------------------

def test_names_readme_and_other_files(tmp_path):
    write(tmp_path, "README.md", "# Not a lesson\n")
    write(tmp_path, "notes.txt", "ignored")
    write(tmp_path, ".01-hidden.md", GOOD)
    write(tmp_path, "01-fine.md", GOOD)
    write(tmp_path, "1-short.md", GOOD)
    write(tmp_path, "02-Upper.md", GOOD)
    write(tmp_path, "03-under_score.md", GOOD)
    (tmp_path / "04-folder.md").mkdir()
    os.mkfifo(tmp_path / "05-fifo.md")                 # opening it would block forever
    (tmp_path / "06-dangling.md").symlink_to(tmp_path / "missing.md")
    result = load_lessons(tmp_path)
    assert [lesson.name for lesson in result.lessons] == ["01-fine"]
    reasons = {b.name: b.reason for b in result.broken}
    assert reasons == {"1-short.md": L.NAME_RULE, "02-Upper.md": L.NAME_RULE,
                       "03-under_score.md": L.NAME_RULE, "04-folder.md": "is a folder, not a file",
                       "05-fifo.md": "is not a regular file",
                       "06-dangling.md": "cannot read the file: No such file or directory"}


def test_numbers_and_slugs_must_be_unique(tmp_path):
    write(tmp_path, "01-alpha.md", GOOD)
    write(tmp_path, "01-beta.md", GOOD)
    write(tmp_path, "02-alpha.md", GOOD)
    result = load_lessons(tmp_path)
    assert [lesson.name for lesson in result.lessons] == ["01-alpha"]
    assert {b.name: b.reason for b in result.broken} == {
        "01-beta.md": "lesson number 01 is already used by 01-alpha.md",
        "02-alpha.md": "slug 'alpha' is already used by 01-alpha.md"}


def test_lessons_are_sorted_by_number(tmp_path):
    for name in ("10-ten.md", "02-two.md", "00-zero.md"):
        write(tmp_path, name, GOOD)
    assert [lesson.number for lesson in load_lessons(tmp_path).lessons] == [0, 2, 10]


def test_an_unusable_folder_raises_one_line(tmp_path):
    with pytest.raises(LessonsError, match="does not exist") as missing:
        load_lessons(tmp_path / "nope")
    write(tmp_path, "file.md", GOOD)
    with pytest.raises(LessonsError, match="is not a folder") as not_dir:
        load_lessons(tmp_path / "file.md")
    for error in (missing, not_dir):
        assert "\n" not in str(error.value)


CHECKOUT_LESSONS = Path(__file__).resolve().parents[1] / "lessons"


def test_default_lessons_dir_holds_the_checkout_lessons():
    """From a checkout it is lessons/; from an installed package, the copy shipped inside it
    (tutor/_lessons). Either way every lesson file is there (contents may lag an edit made
    after `pip install .`; reinstall to ship it)."""
    folder = L.default_lessons_dir()
    assert folder in (CHECKOUT_LESSONS.resolve(), Path(L.__file__).resolve().parent / "_lessons")
    shipped = sorted(p.name for p in folder.glob("*.md"))
    assert shipped == sorted(p.name for p in CHECKOUT_LESSONS.glob("*.md"))


# ---- find_lesson and format_listing ------------------------------------------------------------

@pytest.fixture
def three(tmp_path):
    write(tmp_path, "01-why-memory.md", front("title: Why sequences need memory"))
    write(tmp_path, "03-bptt.md", front("title: Backpropagation through time", "mode: worked"))
    write(tmp_path, "12-playground.md", front("title: Playground"))
    write(tmp_path, "05-broken.md", front("title: x", "lr: fast"))
    return load_lessons(tmp_path)


@pytest.mark.parametrize("key, expected", [
    ("3", "03-bptt"), ("03", "03-bptt"), ("bptt", "03-bptt"), ("03-bptt", "03-bptt"),
    ("03-bptt.md", "03-bptt"), (" 12 ", "12-playground"), ("1", "01-why-memory"),
    ("2", None), ("5", None), ("broken", None), ("bpt", None), ("", None), ("03-why-memory", None),
])
def test_find_lesson(three, key, expected):
    found = find_lesson(three, key)
    assert (found.name if found else None) == expected


def test_format_listing(three):
    text = format_listing(three)
    lines = text.splitlines()
    assert lines[:3] == [
        "01  why-memory  Why sequences need memory",
        "03  bptt        Backpropagation through time  [worked]",
        "12  playground  Playground",
    ]
    assert lines[3:] == ["", "broken:", "  05-broken.md: line 3: lr must be a number, not 'fast'"]
    assert "\x1b" not in text


def test_format_listing_of_an_empty_folder_says_so(tmp_path):
    assert format_listing(load_lessons(tmp_path)) == f"no lessons in {tmp_path}\n"


# ---- lessons/README.md documents the engine's real limits -----------------------------------------

def readme_rows() -> dict[str, str]:
    text = (CHECKOUT_LESSONS / "README.md").read_text(encoding="utf-8")
    rows = {}
    for row in re.finditer(r"^\| (`[^|]+) \|.*$", text, re.MULTILINE):
        for key in re.findall(r"`(\w+)`", row.group(1)):
            rows[key] = row.group(0)
    return rows


def test_readme_documents_every_key_with_the_engine_limits_and_defaults():
    rows = readme_rows()
    for key in L.KNOWN_KEYS:
        assert key in rows, key
    limits = {"seq_len": MAX_SEQ_LEN, "hidden": MAX_HIDDEN, "batch": MAX_BATCH, "lr": MAX_LR,
              "clip": MAX_CLIP, "radius": MAX_RADIUS, "forget_bias": MAX_FORGET_BIAS,
              "seed": MAX_SEED}
    for key, limit in limits.items():
        assert re.search(rf"\b{int(limit)}\b", rows[key]), (key, limit)
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        value = getattr(defaults, f.name)
        if value is None or isinstance(value, bool):
            shown = {None: "none", True: "true", False: "false"}[value]
        else:
            shown = "off" if f.name == "clip" and value == 0 else str(value)
        assert rows[f.name].rstrip(" |").endswith(f"`{shown}`"), (f.name, shown)
    assert re.search(rf"-{int(L.MAP_LIMIT)} to {int(L.MAP_LIMIT)}", rows["map_w"])
    assert f"{L.MAX_TITLE_CHARS} characters" in rows["title"]
