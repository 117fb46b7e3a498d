"""Resident memory of the tutor's whole process tree over a long session (goal: flat).

    python bench/memory.py [--minutes 4] [--compare] [--lessons DIR] [--cols 120 --rows 40]

Starts `python -m tutor` in a pty (bench/ptyterm.py) with a fresh data folder at the first lesson
that has a training lab, training at full speed beside the lesson (at 120×40 both show and the charts
redraw). `--compare` presses x for compare mode (three runs at once). Every few seconds it sums
VmRSS over the app and all its descendants (the training worker), read from /proc, and at the
end prints the curve, the value after the first minute, the last value, and the growth between
them. Exits non-zero only on an error.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ptyterm import descendants, rss_kib  # noqa: E402

GOAL_GROWTH = 0.10     # issue 6: at most 10% after the first minute


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """(total VmRSS of pid and its descendants, number of processes)."""
    pids = {pid} | descendants(pid)
    return sum(rss_kib(p) for p in pids), len(pids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="session length (default 4)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--compare", action="store_true", help="train rnn, lstm and gru at once")
    ap.add_argument("--lessons", type=Path, default=None)
    ap.add_argument("--cols", type=int, default=120)
    ap.add_argument("--rows", type=int, default=40)
    args = ap.parse_args()
    if args.minutes * 60 < 2 * args.every or args.minutes <= 1:
        ap.error("the session must be longer than one minute")

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from ptyterm import PtyTerm

    from tutor.lessons import load_lessons

    lessons = load_lessons(args.lessons).lessons
    training = next((lesson for lesson in lessons if lesson.mode == "train"), None)
    if training is None:
        print("bench/memory.py: no lesson with a training lab", file=sys.stderr)
        return 1
    argv = [sys.executable, "-m", "tutor", "--lesson", training.slug] + (
        ["--lessons", str(args.lessons)] if args.lessons else [])
    samples: list[tuple[float, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="rnn-tutor-memory-") as data:
        env = {"RNN_TUTOR_DATA_DIR": data, "PYTHONPATH": str(root)}
        with PtyTerm(argv, cols=args.cols, rows=args.rows, env=env) as term:
            term.wait_for(lambda t: "steps/s" in t.text, timeout=60)
            if args.compare:
                term.send("x")
                term.wait_for(lambda t: "rnn+lstm+gru" in t.text, timeout=20)
            start = time.monotonic()
            end = start + args.minutes * 60
            while True:
                now = time.monotonic()
                total, count = tree_rss_kib(term.proc.pid)
                samples.append((now - start, total, count))
                if now >= end or term.exited:
                    break
                time.sleep(min(args.every, max(0.0, end - now)))
            live = "steps/s" in term.text
    if len(samples) < 3:
        print("bench/memory.py: too few samples", file=sys.stderr)
        return 1

    after_minute = [s for s in samples if s[0] >= 60.0]
    base = after_minute[0][1]
    last = samples[-1][1]
    peak = max(s[1] for s in after_minute)
    growth = (last - base) / base
    mode = "compare mode (rnn, lstm, gru)" if args.compare else "one run"
    print(f"python -m tutor --lesson {training.slug}, {args.cols}x{args.rows}, training at full speed, {mode}")
    print("t (s)  RSS of the process tree (MiB)  processes")
    step = max(1, len(samples) // 16)
    for t, total, count in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"{t:6.0f}  {total / 1024:8.1f}  {count}")
    print(f"at 1 min {base / 1024:.1f} MiB, at {samples[-1][0] / 60:.1f} min {last / 1024:.1f} MiB "
          f"(peak after 1 min {peak / 1024:.1f} MiB), growth after the first minute "
          f"{growth * 100:+.1f}% (goal <= {GOAL_GROWTH * 100:g}%): "
          f"{'met' if growth <= GOAL_GROWTH else 'MISSED'}")
    median_count = statistics.median(s[2] for s in samples)
    print(f"processes in the tree: median {median_count:g}; still training at the end: {live}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, OSError) as exc:
        print(f"bench/memory.py: {exc}", file=sys.stderr)
        sys.exit(1)
