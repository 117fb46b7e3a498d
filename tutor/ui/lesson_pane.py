"""The lesson pane: a one-line header, then the lesson's Markdown with its checkpoints in place.

The body scrolls with the keyboard (up/down, page up/down, home/end) while it has focus. A lesson
without checkpoints counts as read once its end has been on screen; the pane posts `ReadToEnd`
for that. Lesson text never reaches the terminal raw: `tutor.lessons` has already cleaned every
control character, and links are not followed.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Markdown, Static
from markdown_it import MarkdownIt

from tutor.lessons import Checkpoint, Lesson

from .checkpoint import CheckpointView
from .predict_view import PredictView

COMPLETE_MARK = "✓"
BLOCKS_PER_CHUNK = 6         # Markdown blocks per widget after the first screenful
FIRST_FRAME_PAUSE_S = 0.02   # long enough for the first screenful to be painted


def split_markdown(text: str) -> list[str]:
    """Split Markdown at its top-level blocks (headings, paragraphs, lists, tables, code), so
    each piece renders exactly as it would inside the whole."""
    tokens = MarkdownIt("gfm-like").parse(text)
    starts = sorted({t.map[0] for t in tokens if t.level == 0 and t.map and t.nesting >= 0})
    lines = text.split("\n")
    if len(starts) <= 1:
        return [text]
    starts[0] = 0
    bounds = starts + [len(lines)]
    return ["\n".join(lines[a:b]).strip("\n") for a, b in zip(bounds, bounds[1:])
            if "\n".join(lines[a:b]).strip()]


def estimate_rows(markdown: str, width: int) -> int:
    """Rows a chunk takes on screen, roughly: wrapped lines plus a blank margin."""
    return sum(max(1, -(-len(line) // width)) for line in markdown.split("\n")) + 1


@dataclass
class FirstLesson:
    """What the pane needs to draw a lesson's first screenful in its own first frame."""
    lesson: Lesson
    answers: dict[str, dict | None]
    position: str
    complete: bool
    width: int                # columns of text, roughly
    rows: int                 # rows of the pane, roughly


class LessonBody(VerticalScroll):
    """The scrolling part; focusable so the arrow keys scroll it."""

    DEFAULT_CSS = """
    LessonBody { height: 1fr; scrollbar-size-vertical: 1; }
    LessonBody:focus { background-tint: $foreground 3%; }
    """

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def _scrolled(self) -> None:
        pane = self.parent
        if isinstance(pane, LessonPane):
            pane.scrolled()

    def on_resize(self) -> None:
        # Also sent when the content's height changes, i.e. once a new lesson is laid out.
        self._scrolled()


class LessonPane(Vertical):
    """Shows one lesson at a time; `show_lesson` swaps the content."""

    DEFAULT_CSS = """
    LessonPane { height: 1fr; }
    LessonPane > #lesson-header {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
        text-style: bold;
    }
    LessonPane .lesson-warning {
        margin: 1 2 0 2;
        padding: 0 1;
        border-left: thick $warning;
        color: $text-warning;
    }
    /* A lesson's text is split into several Markdown widgets so the first screenful shows
       sooner. Margins do not collapse across widgets: every block has a bottom margin of 1, so
       the first block of a continuing chunk gives up one row of its top margin. (A margin-top
       rule alone would reset the other sides too, so each rule gives all four.) */
    LessonPane Markdown.-continued > MarkdownBlock:first-child { margin: 0 0 1 0; }
    LessonPane Markdown.-continued > MarkdownH1:first-child,
    LessonPane Markdown.-continued > MarkdownH2:first-child { margin: 1 0 1 0; }
    /* Code and formula blocks wrap instead of running off the pane: a narrow terminal must
       not hide the end of a formula, and a fence cannot be scrolled sideways by keyboard. */
    LessonPane MarkdownFence { overflow-x: hidden; }
    LessonPane MarkdownFence > Label { width: 1fr; text-wrap: wrap; }
    LessonPane .lesson-end {
        margin: 1 2 1 2;
        color: $text-muted;
        text-align: center;
    }
    LessonPane .lesson-end.-complete { color: $text-success; }
    """

    class ReadToEnd(Message):
        """The end of the current lesson has been on screen."""

        def __init__(self, lesson: Lesson) -> None:
            super().__init__()
            self.lesson = lesson

    def __init__(self, first: FirstLesson | None = None, **kwargs) -> None:
        """`first`: a lesson to draw as part of the pane's own first frame (its first screenful;
        `finish_first` mounts the rest), so the app's first frame already shows it."""
        super().__init__(**kwargs)
        self.lesson: Lesson | None = None
        self.position = ""               # e.g. "3/12", set by the app
        self.complete = False
        self._loaded = False
        self._reported_end = False
        self._question_seen: CheckpointView | None = None   # the focused question, once in view
        self._lock = asyncio.Lock()
        self._wanted = 0
        self._first_batch: list[Widget] = []
        self._rest: list[list[Widget]] = []
        if first is not None:
            self.lesson, self.position, self.complete = first.lesson, first.position, first.complete
            batches = self._batches_for(first.lesson, first.answers, first.width, first.rows)
            self._first_batch, self._rest = batches[0], batches[1:]

    def compose(self) -> ComposeResult:
        yield Static(self._header_text(), id="lesson-header", markup=False)
        with LessonBody(id="lesson-body"):
            yield from self._first_batch
        self._first_batch = []

    @property
    def body(self) -> LessonBody:
        return self.query_one(LessonBody)

    # ---- content ------------------------------------------------------------------------------

    async def show_lesson(self, lesson: Lesson, answers: dict[str, dict | None],
                          position: str, complete: bool,
                          still_wanted: Callable[[], bool] = lambda: True) -> bool:
        """Replace the content with `lesson`. The first screenful is mounted at once and the
        rest in small batches afterwards, so the lesson shows without waiting for every block.
        When calls overlap (keys pressed faster than lessons render), or `still_wanted` turns
        false, only the latest finishes; returns whether this call drew the whole lesson."""
        self._wanted += 1
        ticket = self._wanted
        async with self._lock:
            if ticket != self._wanted:
                return False
            self.lesson = lesson
            self.position = position
            self.complete = complete
            self._loaded = False
            self._reported_end = False
            self._update_header()
            body = self.body
            await body.remove_children()
            body.scroll_to(y=0, animate=False, immediate=True)
            width = max(20, (body.size.width or self.app.size.width) - 6)
            rows = max(10, body.size.height or self.app.size.height)
            batches = self._batches_for(lesson, answers, width, rows)
            await body.mount_all(batches[0])
            return await self._mount_rest(batches[1:], ticket, still_wanted)

    async def finish_first(self, still_wanted: Callable[[], bool] = lambda: True) -> bool:
        """Mount the rest of the lesson given to the constructor; returns whether it drew."""
        self._wanted += 1
        ticket = self._wanted
        async with self._lock:
            if ticket != self._wanted:
                return False
            rest, self._rest = self._rest, []
            return await self._mount_rest(rest, ticket, still_wanted)

    async def _mount_rest(self, batches: list[list[Widget]], ticket: int,
                          still_wanted: Callable[[], bool]) -> bool:
        """After the first screenful: let it be painted, then mount the rest (lock held)."""
        await asyncio.sleep(FIRST_FRAME_PAUSE_S)
        for batch in batches:
            if ticket != self._wanted or not still_wanted():
                return False              # a newer lesson was asked for; it will redraw
            await self.body.mount_all(batch)
        self._loaded = True
        self._update_end()
        self.set_timer(0.25, self.scrolled)
        return True

    async def show_message(self, title: str, text: str) -> None:
        """Show a note instead of a lesson (no lessons could be loaded)."""
        self._wanted += 1
        async with self._lock:
            self.lesson = None
            self._loaded = False
            self.query_one("#lesson-header", Static).update(Text(title))
            body = self.body
            await body.remove_children()
            await body.mount(Static(Text(text), classes="lesson-warning"))

    def _batches_for(self, lesson: Lesson, answers: dict[str, dict | None], width: int,
                     rows: int) -> list[list[Widget]]:
        """The lesson's widgets in mounting order: a first batch that fills about one screen,
        then one Markdown chunk (a few blocks) or checkpoint per batch."""
        first: list[Widget] = [Static(Text("⚠ " + warning), classes="lesson-warning")
                               for warning in lesson.warnings]
        later: list[list[Widget]] = []
        budget = rows - 3 * len(first)        # rows left to fill before the first paint

        def add(widget: Widget, height: int) -> None:
            nonlocal budget
            (first.append if budget > 0 else lambda w: later.append([w]))(widget)
            budget -= height

        total = len(lesson.checkpoints)
        number = 0
        for part in lesson.parts:
            if isinstance(part, Checkpoint):
                number += 1
                view = PredictView if part.predicts else CheckpointView
                add(view(part, number, total, answers.get(part.id),
                         id=f"checkpoint-{part.id}"), len(part.options) + 6)
                continue
            chunk: list[str] = []
            chunk_rows = 0
            continued = False              # not the first chunk of this part

            def flush() -> None:
                nonlocal chunk, chunk_rows, continued
                add(Markdown("\n\n".join(chunk), open_links=False,
                             classes="-continued" if continued else None), chunk_rows)
                chunk, chunk_rows, continued = [], 0, True

            for block in split_markdown(part):
                chunk.append(block)
                chunk_rows += estimate_rows(block, width)
                if (budget > 0 and chunk_rows >= budget) or \
                        (budget <= 0 and len(chunk) >= BLOCKS_PER_CHUNK):
                    flush()
            if chunk:
                flush()
        add(Static("", id="lesson-end", classes="lesson-end"), 2)
        return [first] + later if first else later

    # ---- state shown -------------------------------------------------------------------------

    def set_complete(self, complete: bool) -> None:
        self.complete = complete
        self._update_header()
        self._update_end()

    def _header_text(self) -> Text:
        if self.lesson is None:
            return Text("")
        mark = f"  {COMPLETE_MARK} complete" if self.complete else ""
        return Text(f"{self.position}  {self.lesson.title}{mark}", no_wrap=True,
                    overflow="ellipsis")

    def _update_header(self) -> None:
        if self.lesson is not None:
            self.query_one("#lesson-header", Static).update(self._header_text())

    def _update_end(self) -> None:
        if self.lesson is None or not self._loaded:
            return
        end = self.body.query("#lesson-end")
        if not end:
            return
        lesson = self.lesson
        if self.complete:
            text = f"{COMPLETE_MARK} lesson complete · n next lesson · o all lessons"
        elif lesson.checkpoints:
            text = "end of lesson · answer every checkpoint to complete it · n next lesson"
        else:
            text = "end of lesson · n next lesson · o all lessons"
        end.first(Static).update(Text(text))
        end.first(Static).set_class(self.complete, "-complete")

    @property
    def checkpoints(self) -> list[CheckpointView]:
        return list(self.body.query(CheckpointView))

    # ---- reading to the end --------------------------------------------------------------------

    def is_shown(self) -> bool:
        node = self
        while isinstance(node, Widget):
            if not node.display or not node.visible:
                return False
            node = node.parent
        return self.body.size.height > 0

    def scrolled(self) -> None:
        """Called when the body scrolls, resizes or becomes visible."""
        body = self.body
        # Regions are only current after the next refresh: checking them now would take focus
        # from a question that tab has just scrolled into view.
        self.call_after_refresh(self._release_hidden_question)
        if not self._loaded or self._reported_end or self.lesson is None or not self.is_shown():
            return
        end = body.query("#lesson-end")
        if not end or end.first().size.height == 0:
            return                       # the new lesson is not laid out yet
        if body.scroll_y >= body.max_scroll_y - 1:
            self._reported_end = True
            self.post_message(self.ReadToEnd(self.lesson))

    def on_descendant_focus(self) -> None:
        self.call_after_refresh(self._release_hidden_question)

    def _release_hidden_question(self) -> None:
        """A question scrolled out of sight should not keep the arrow keys."""
        if not self.is_attached:
            return
        body = self.body
        if self.app.animator.is_being_animated(body, "scroll_y"):
            return                       # still on its way to the question; checked again after
        focused = self.screen.focused
        if not isinstance(focused, CheckpointView) or focused.parent is not body:
            self._question_seen = None
            return
        if body.region.overlaps(focused.region):
            self._question_seen = focused
        elif self._question_seen is focused:
            # Only once it has been in view: until then tab's scroll towards it is still to come.
            self._question_seen = None
            body.focus(scroll_visible=False)

