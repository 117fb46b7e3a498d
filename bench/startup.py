"""Startup to the first lesson on screen, against a bare Textual app (goal: ≤ 1.5×).

    python bench/startup.py [--runs 7] [--lessons DIR] [--cols 80 --rows 24]

Both programs start in the same pty harness (bench/ptyterm.py: TERM=xterm-256color, pyte reading
the screen) and are timed from just before launch to the output chunk that first shows their
content. The tutor (`python -m tutor`, fresh progress, so the first lesson opens) is done when
the first lesson's title and its first line of text are on screen. The reference is a bare
Textual app with one Markdown heading and one plotext chart (this file run with --reference),
done when both are on screen. Runs alternate between the two so both meet the same machine
load; medians are printed. Exits non-zero only on an error, not when the goal is missed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 1.5
REFERENCE_HEADING = "Reference heading"
REFERENCE_CHART = "reference chart"


def run_reference_app() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Markdown
    from textual_plotext import PlotextPlot

    class Reference(App):
        CSS = "PlotextPlot { height: 1fr; }"

        def compose(self) -> ComposeResult:
            yield Markdown(f"# {REFERENCE_HEADING}")
            yield PlotextPlot()

        def on_mount(self) -> None:
            plt = self.query_one(PlotextPlot).plt
            plt.title(REFERENCE_CHART)
            plt.plot([1, 2, 3, 4, 5], [1, 4, 9, 16, 25])

    Reference().run()


def first_lesson_marks(lessons_dir: Path | None) -> tuple[str, str]:
    """The first lesson's title and a piece of its first line of text, as they appear."""
    from tutor.lessons import load_lessons

    lesson_set = load_lessons(lessons_dir)
    if not lesson_set.lessons:
        raise SystemExit(f"bench/startup.py: no lessons in {lesson_set.folder}")
    lesson = lesson_set.lessons[0]
    text = next(p for p in lesson.parts if isinstance(p, str))
    line = next(l for l in text.splitlines() if l.strip())
    line = line.lstrip("#").strip().replace("**", "").replace("*", "").replace("`", "")
    return lesson.title[:30], line[:20]


def time_to(term_cls, argv, marks, cols, rows, env) -> float:
    start = time.monotonic()
    term = term_cls(argv, cols=cols, rows=rows, env=env)
    term.start()
    try:
        shown = term.wait_for(lambda t: all(m in t.text for m in marks), timeout=60)
    finally:
        term.close()
    return shown - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs of each program")
    ap.add_argument("--lessons", type=Path, default=None, help="lessons folder (default: shipped)")
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference:
        run_reference_app()
        return 0

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from ptyterm import PtyTerm

    title, first_line = first_lesson_marks(args.lessons)
    tutor = [sys.executable, "-m", "tutor"] + (["--lessons", str(args.lessons)]
                                               if args.lessons else [])
    reference = [sys.executable, os.path.abspath(__file__), "--reference"]
    times: dict[str, list[float]] = {"tutor": [], "reference": []}
    with tempfile.TemporaryDirectory(prefix="rnn-tutor-startup-") as data:
        base_env = {"PYTHONPATH": str(root)}
        for i in range(args.runs):
            # A fresh data folder each run: a first run, so the first lesson opens.
            env = dict(base_env, RNN_TUTOR_DATA_DIR=os.path.join(data, f"run{i}"))
            times["reference"].append(time_to(PtyTerm, reference,
                                              (REFERENCE_HEADING, REFERENCE_CHART),
                                              args.cols, args.rows, env))
            times["tutor"].append(time_to(PtyTerm, tutor, (title, first_line),
                                          args.cols, args.rows, env))
    ref, app = statistics.median(times["reference"]), statistics.median(times["tutor"])
    ratio = app / ref
    print(f"startup to first content on screen, {args.cols}x{args.rows} pty, {args.runs} runs each")
    print("reference (Markdown heading + plotext chart): "
          + ", ".join(f"{t * 1000:.0f}" for t in times["reference"]) + " ms")
    print("tutor (first lesson):                          "
          + ", ".join(f"{t * 1000:.0f}" for t in times["tutor"]) + " ms")
    print(f"median reference {ref * 1000:.0f} ms, tutor {app * 1000:.0f} ms: "
          f"{ratio:.2f}x (goal <= {GOAL_RATIO:g}x): {'met' if ratio <= GOAL_RATIO else 'MISSED'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, OSError) as exc:
        print(f"bench/startup.py: {exc}", file=sys.stderr)
        sys.exit(1)
