"""Soak: compare mode (rnn, lstm, gru side by side) training for ten minutes in a real pty.

    python bench/soak.py [--minutes 10] [--every 10] [--cmd "rnn-tutor lab"]

Samples the resident memory of the app's whole process tree (the UI process and its training
process, read from /proc) and reports the growth after the first minute. Goal: at most 10%.
Chart histories are bounded by design (a fixed-size, downsampled history per series), so memory
must flatten once the first minute has filled them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ptyterm import PtyTerm, descendants, lab_command  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    return [pid, *descendants(pid)]


def rss_mib(pid: int) -> tuple[float, int]:
    total, n = 0, 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
                n += 1
        except OSError:
            pass
    return total / 2**20, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--cmd", help="command that opens the lab (default: rnn-tutor lab)")
    args = ap.parse_args()
    cmd = lab_command(args.cmd)
    samples: list[tuple[float, float, int]] = []
    with PtyTerm(cmd, cols=80, rows=24) as term:
        term.wait_for(lambda t: "steps/s" in t.text, timeout=60)
        term.send("x")                                  # compare mode
        term.wait_for(lambda t: "lstm" in t.text and "gru" in t.text, timeout=30)
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            if term.exited:
                print("soak: the app exited during the soak -> FAIL")
                return 1
            mib, procs = rss_mib(term.proc.pid)
            samples.append((time.monotonic() - t0, mib, procs))
            time.sleep(args.every)
        alive = "steps/s" in term.text
    after_first = [s for s in samples if s[0] >= 60.0] or samples
    start = after_first[0][1]
    peak = max(s[1] for s in after_first)
    final = statistics.median(s[1] for s in samples[-3:])
    growth = (peak - start) / start * 100
    print(f"soak: {args.minutes:g} min of compare mode (rnn, lstm, gru) at 80×24; "
          f"{samples[-1][2]} processes in the app's tree")
    print(f"resident memory of the process tree: {samples[0][1]:.1f} MiB at start, "
          f"{start:.1f} MiB at 1 min, peak after 1 min {peak:.1f} MiB, final {final:.1f} MiB")
    print(f"growth after the first minute: {growth:+.1f}% (goal: at most +10%) -> "
          f"{'PASS' if growth <= 10 and alive else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
