"""The lesson pane draws a lesson in chunks (the first screenful first); the result must look
exactly like the lesson drawn in one piece."""
from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Markdown

import tutor.ui.lesson_pane as lesson_pane
from tutor.engine import Settings
from tutor.lessons import Checkpoint, Lesson, Option, load_lessons
from tutor.ui.lesson_pane import LessonPane, split_markdown

RICH = """\
# A heading

A paragraph with **bold**, *italic* and `code`, long enough to wrap across more than one line
of the pane so wrapping is part of the comparison.

Another paragraph right after.

## A second heading

- a list item
- another item
  - nested

1. first
2. second

| a | b |
|---|---|
| 1 | 2 |

> A quote that says something.

```python
h = np.tanh(W @ x + b)
```

### A third heading

---

Closing words: h_t = tanh(W_xh·x_t + W_hh·h_{t−1} + b).
"""


def lesson_of(parts) -> Lesson:
    checkpoints = [p for p in parts if isinstance(p, Checkpoint)]
    return Lesson(1, "rich", "Rich", Path("01-rich.md"), "none", Settings(), frozenset(),
                  parts, checkpoints)


class PaneApp(App):
    def __init__(self, lesson: Lesson, chunked: bool):
        super().__init__()
        self.lesson = lesson
        self.chunked = chunked

    def compose(self):
        yield LessonPane()

    async def on_mount(self) -> None:
        pane = self.query_one(LessonPane)
        batches_for = pane._batches_for
        # Chunked: a tiny first screenful and two blocks per chunk, so every kind of block
        # meets a chunk boundary. Whole: one Markdown widget per part.
        pane._batches_for = lambda lesson, answers, width, rows: batches_for(
            lesson, answers, width, 6 if self.chunked else 10**6)
        await pane.show_lesson(self.lesson, {}, "1/1", False)


def screen_rows(svg: str) -> list[str]:
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>',
                         svg, re.S):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), unescape(m.group(3))))
    lines = ["".join(t for _, t in sorted(v)).rstrip() for _, v in sorted(rows.items())]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


async def draw(lesson: Lesson, chunked: bool, monkeypatch) -> tuple[list[str], int]:
    monkeypatch.setattr(lesson_pane, "BLOCKS_PER_CHUNK", 2 if chunked else 10**6)
    app = PaneApp(lesson, chunked)
    async with app.run_test(size=(70, 300)) as pilot:
        await pilot.pause(0.3)
        return screen_rows(app.export_screenshot()), len(app.query(Markdown))


def test_split_markdown_keeps_every_line_once():
    pieces = split_markdown(RICH)
    assert len(pieces) == 12
    assert [line for p in pieces for line in p.split("\n") if line.strip()] == \
        [line for line in RICH.split("\n") if line.strip()]


async def test_chunked_lesson_looks_like_the_whole(monkeypatch):
    question = Checkpoint("q", "Which?", [Option("this", True, "yes"), Option("that", False, "no")])
    lesson = lesson_of([RICH, question, "Text after the question.\n\n## End"])
    whole, whole_widgets = await draw(lesson, False, monkeypatch)
    chunked, chunked_widgets = await draw(lesson, True, monkeypatch)
    assert whole_widgets == 2 and chunked_widgets > 6
    assert chunked == whole


async def test_shipped_lessons_look_the_same_chunked(monkeypatch):
    lessons = load_lessons().lessons
    if not lessons:
        pytest.skip("no shipped lessons yet")
    for lesson in lessons[::3]:          # a spread of them; each takes about a second
        whole, _ = await draw(lesson, False, monkeypatch)
        chunked, _ = await draw(lesson, True, monkeypatch)
        assert chunked == whole, lesson.name
