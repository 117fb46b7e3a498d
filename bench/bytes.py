"""Bytes written to the terminal per second by the lab while it trains (goal: ≤ 20 KiB/s).

    python bench/bytes.py [--cmd "rnn-tutor lab"] [--seconds 20] [--windows 4]

Runs the lab in an 80×24 pty (TERM=xterm-256color, COLORTERM=truecolor), waits until training
shows, then counts what the app writes over consecutive windows and prints the median. It also
samples the screen twice a second to show the charts stayed live (their rows kept changing).
Exits non-zero only on an error, not when the goal is missed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from ptyterm import PtyTerm, lab_command, repo_root

GOAL_KIB_S = 20.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmd", help="command that opens the lab (default: rnn-tutor lab)")
    ap.add_argument("--seconds", type=float, default=20.0, help="total measured time")
    ap.add_argument("--windows", type=int, default=4, help="windows to take the median over")
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--rows", type=int, default=24)
    args = ap.parse_args()
    argv = lab_command(args.cmd)
    window = args.seconds / args.windows
    with PtyTerm(argv, cols=args.cols, rows=args.rows, cwd=repo_root()) as term:
        term.wait_for(lambda t: "steps/s" in t.text, timeout=60)
        time.sleep(args.warmup)
        rates, changes, samples = [], 0, 0
        previous = None
        start = time.monotonic()
        for i in range(args.windows):
            w0 = start + i * window
            w1 = w0 + window
            while time.monotonic() < w1:
                time.sleep(0.5)
                charts = term.lines[: args.rows - 8]
                samples += 1
                changes += charts != previous and previous is not None
                previous = charts
            rates.append(term.bytes_in(w0, w1) / window / 1024)
        final = term.text
    median = statistics.median(rates)
    print(f"command: {' '.join(argv)}  ({args.cols}x{args.rows}, xterm-256color, truecolor)")
    print("KiB/s per window: " + ", ".join(f"{r:.1f}" for r in rates))
    print(f"median {median:.1f} KiB/s over {args.windows} windows of {window:g} s "
          f"(goal <= {GOAL_KIB_S:g} KiB/s): {'met' if median <= GOAL_KIB_S else 'MISSED'}")
    print(f"chart rows changed in {changes} of {samples - 1} half-second samples")
    if "steps/s" not in final:
        print("warning: the status line no longer shows training", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, OSError) as exc:
        print(f"bench/bytes.py: {exc}", file=sys.stderr)
        sys.exit(1)
