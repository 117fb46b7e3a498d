"""Exit time while training: q, ctrl+c, SIGTERM and SIGHUP, each timed through a real pty.

    python bench/exit_time.py [--repeats 5] [--cmd "rnn-tutor lab"]

Measures from the key or signal until every process of the app (the UI and its training
process) is gone, and checks the terminal was restored (alternate screen left, cursor shown).
Goal: within 1 s. Prints the median and worst per way of leaving.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ptyterm import PtyTerm, lab_command  # noqa: E402
from soak import tree  # noqa: E402

WAYS = {"q": "q", "ctrl+c": "\x03", "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


def alive(pids: list[int]) -> bool:
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    return True
        except OSError:
            pass
    return False


def one_exit(cmd: list[str], how) -> tuple[float, bool]:
    term = PtyTerm(cmd, cols=80, rows=24).start()
    try:
        term.wait_for(lambda t: "steps/s" in t.text, timeout=60)
        time.sleep(1.0)                       # training at full speed
        pids = tree(term.proc.pid)
        t0 = time.monotonic()
        if isinstance(how, str):
            term.send(how)
        else:
            os.kill(term.proc.pid, how)
        while alive(pids) and time.monotonic() - t0 < 10:
            try:
                term.proc.wait(timeout=0.005)
            except Exception:
                pass
        elapsed = time.monotonic() - t0
        time.sleep(0.2)
        term.text                             # parse everything the app wrote before it left
        # Restored: the alternate screen (private mode 1049) is left and the cursor is shown.
        restored = (1049 << 5) not in term.screen.mode and not term.screen.cursor.hidden
        return elapsed, restored and not alive(pids)
    finally:
        term.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cmd", help="command that opens the lab (default: rnn-tutor lab)")
    args = ap.parse_args()
    cmd = lab_command(args.cmd)
    worst_all = 0.0
    print("| way out | median exit | worst exit | terminal restored, no process left |")
    print("|---|---|---|---|")
    for name, how in WAYS.items():
        times, clean = [], True
        for _ in range(args.repeats):
            t, ok = one_exit(cmd, how)
            times.append(t)
            clean &= ok
        worst_all = max(worst_all, max(times))
        print(f"| {name} | {statistics.median(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms "
              f"| {'yes' if clean else 'NO'} |")
    print(f"\nworst of all: {worst_all * 1000:.0f} ms (goal: within 1 s) -> "
          f"{'PASS' if worst_all <= 1.0 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
