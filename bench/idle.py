"""A tutor left open costs nothing: CPU and memory of a tutor nobody touches.

    python bench/idle.py [--minutes 2.5] [--only tutor|lab] [--lesson SLUG] [--cols 80 --rows 24]

Two runs, one after the other, each in a pty (bench/ptyterm.py) with a fresh data folder and no
key pressed after start-up:
  tutor  `python -m tutor --lesson SLUG` (default: the first lesson with a training lab) at 80×24,
         where the lesson shows and the lab is hidden beside it;
  lab    `python -m tutor lab` (the playground: an LSTM on the adding problem, T = 50).
Every few seconds it reads the CPU time (utime + stime) of the app and all its descendants (the
training worker) from /proc and their summed VmRSS. It prints the curve, the CPU share of one
core from minute 2 to the end (goal: under 5%) and the memory growth from minute 1 to the end
(goal: flat, at most 10%), and the lab's status line at the end. Exits 1 if a goal is missed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ptyterm import PtyTerm, descendants, repo_root, rss_kib  # noqa: E402

GOAL_CPU = 0.05          # of one core, from minute 2 on
GOAL_GROWTH = 0.10       # RSS, from minute 1 to the end
SETTLED_S = 120.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK      # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def tree(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, VmRSS KiB, processes) of pid and every descendant."""
    pids = {pid} | descendants(pid)
    return sum(cpu_s(p) for p in pids), sum(rss_kib(p) for p in pids), len(pids)


def measure(name: str, argv: list[str], args) -> bool:
    samples: list[tuple[float, float, int, int]] = []      # (t, cpu s, rss KiB, processes)
    with tempfile.TemporaryDirectory(prefix="rnn-tutor-idle-") as data:
        env = {"RNN_TUTOR_DATA_DIR": data, "PYTHONPATH": repo_root()}
        with PtyTerm(argv, cols=args.cols, rows=args.rows, env=env) as term:
            term.wait_for(lambda t: "Quit" in t.text or "step" in t.text, timeout=60)
            start = time.monotonic()
            end = start + args.minutes * 60
            while True:
                now = time.monotonic()
                samples.append((now - start, *tree(term.proc.pid)))
                if now >= end or term.exited:
                    break
                time.sleep(min(args.every, max(0.0, end - now)))
            status = [line.strip() for line in term.lines if "step" in line]
    shown = " ".join(argv[argv.index("tutor") + 1:] if "tutor" in argv else argv)
    print(f"\n{name}: python -m tutor {shown}, {args.cols}x{args.rows}, no key pressed")
    print("| from (s) | to (s) | CPU, % of one core | RSS of the tree (MiB) | processes |")
    print("|---|---|---|---|---|")
    for (t0, c0, _, _), (t1, c1, rss, n) in zip(samples, samples[1:]):
        print(f"| {t0:.0f} | {t1:.0f} | {100 * (c1 - c0) / (t1 - t0):.1f} | {rss / 1024:.1f} | {n} |")
    settled = [s for s in samples if s[0] >= SETTLED_S]
    after_minute = [s for s in samples if s[0] >= 60.0]
    if len(settled) < 2 or not after_minute:
        print(f"{name}: too short to judge: use --minutes 2.5 or more")
        return False
    cpu = (settled[-1][1] - settled[0][1]) / (settled[-1][0] - settled[0][0])
    growth = (samples[-1][2] - after_minute[0][2]) / after_minute[0][2]
    ok = cpu < GOAL_CPU and growth <= GOAL_GROWTH
    print(f"{name}: CPU {100 * cpu:.2f}% of one core from {settled[0][0]:.0f} s to "
          f"{settled[-1][0]:.0f} s (goal < {100 * GOAL_CPU:g}%); RSS {after_minute[0][2] / 1024:.1f}"
          f" MiB at {after_minute[0][0]:.0f} s, {samples[-1][2] / 1024:.1f} MiB at "
          f"{samples[-1][0]:.0f} s ({100 * growth:+.1f}%, goal <= {100 * GOAL_GROWTH:g}%); "
          f"{'met' if ok else 'MISSED'}")
    if status:
        print(f"{name}: the screen's status at the end: {' / '.join(status[-2:])}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.5, help="per run (default 2.5)")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--only", choices=("tutor", "lab"), default=None)
    ap.add_argument("--lesson", default=None, help="the lesson left open (slug or number)")
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--rows", type=int, default=24)
    args = ap.parse_args()

    sys.path.insert(0, repo_root())
    from tutor.lessons import load_lessons

    lesson = args.lesson or next(l.slug for l in load_lessons(None).lessons if l.mode == "train")
    runs = {"tutor": [sys.executable, "-m", "tutor", "--lesson", lesson],
            "lab": [sys.executable, "-m", "tutor", "lab"]}
    print(f"$ python bench/idle.py {' '.join(sys.argv[1:])}".rstrip())
    ok = True
    for name, argv in runs.items():
        if args.only in (None, name):
            ok = measure(name, argv, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, OSError) as exc:
        print(f"bench/idle.py: {exc}", file=sys.stderr)
        sys.exit(1)
