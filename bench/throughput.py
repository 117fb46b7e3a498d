"""Training steps per second inside the lab vs headless `rnn-tutor train` (goal: ≥ 80%).

    python bench/throughput.py [--cmd "rnn-tutor lab"] [--train-cmd "rnn-tutor train"]
                               [--seconds 15] [--rounds 2] [--set cell=lstm ...]

Both run the same settings (default: the lab's defaults, lstm on adding with T=50), alternately,
in the same run. Headless runs twice per round, as is and with BLAS/OpenMP limited to one thread
(as the lab's worker is; on a small machine many-threaded BLAS can be several times slower), and
the lab is compared with the faster of the two. The lab runs in an 80×24 pty and its rate is
read off the screen: the status line's step counter, at the first and last change seen in the
window. The headless rate comes from the `elapsed_s` of the JSON lines `rnn-tutor train` prints,
over the same window after the same warm-up. Exits non-zero only on an error, not when the goal
is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

from ptyterm import PtyTerm, lab_command, repo_root

sys.path.insert(0, repo_root())
from tutor.blas import ONE_THREAD  # noqa: E402

GOAL = 0.80
STEP = re.compile(r"\bstep (\d+)\b")
DEFAULTS = {"cell": "lstm", "task": "adding", "seq-len": "50"}


def train_command(option: str | None) -> list[str]:
    if option:
        return shlex.split(option)
    exe = shutil.which("rnn-tutor")
    return [exe, "train"] if exe else [sys.executable, "-m", "tutor", "train"]


def flags(settings: dict[str, str]) -> list[str]:
    out = []
    for key, value in settings.items():
        out += [f"--{key}", value]
    return out


def app_rate(argv: list[str], warmup: float, seconds: float) -> float:
    """Steps per second read from the lab's status line."""
    with PtyTerm(argv, cols=80, rows=24, cwd=repo_root()) as term:
        term.wait_for(lambda t: "steps/s" in t.text, timeout=60)
        time.sleep(warmup)
        seen: list[tuple[float, int]] = []
        end = time.monotonic() + seconds
        last = None
        while time.monotonic() < end:
            step = _status_step(term.lines)
            if step is not None and step != last:
                seen.append((time.monotonic(), step))
                last = step
            time.sleep(0.01)
        if len(seen) < 2:
            raise ValueError("the lab's step counter did not move:\n" + term.text)
    (t0, s0), (t1, s1) = seen[0], seen[-1]
    return (s1 - s0) / (t1 - t0)


def _status_step(lines: list[str]) -> int | None:
    for line in reversed(lines[-4:]):
        match = STEP.search(line)
        if match:
            return int(match.group(1))
    return None


def headless_rate(argv: list[str], warmup: float, seconds: float,
                  one_thread: bool = False) -> float:
    """Steps per second from `rnn-tutor train`'s own elapsed_s, over [warmup, warmup+seconds].
    one_thread: with BLAS/OpenMP limited to one thread, as the lab's worker is."""
    env = dict(os.environ)
    if one_thread:
        env.update(ONE_THREAD)
    proc = subprocess.Popen(argv + ["--steps", "10000000", "--log-every", "10"],
                            stdout=subprocess.PIPE, text=True, cwd=repo_root(), env=env)
    points = []
    try:
        for line in proc.stdout:
            record = json.loads(line)
            if "step" not in record:
                break
            points.append((record["elapsed_s"], record["step"]))
            if record["elapsed_s"] > warmup + seconds:
                break
    finally:
        proc.kill()
        proc.wait()
    window = [(t, s) for t, s in points if t >= warmup]
    (t0, s0), (t1, s1) = window[0], window[-1]
    return (s1 - s0) / (t1 - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmd", help="command that opens the lab (default: rnn-tutor lab)")
    ap.add_argument("--train-cmd", help="headless trainer (default: rnn-tutor train)")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a training option for both, e.g. cell=gru or seq-len=100")
    args = ap.parse_args()
    settings = dict(DEFAULTS)
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.replace("_", "-")] = value
    lab = lab_command(args.cmd) + flags(settings)
    train = train_command(args.train_cmd) + flags(settings)
    print(f"settings: {' '.join(flags(settings))}")
    apps, heads, heads1 = [], [], []
    for _ in range(args.rounds):
        heads.append(headless_rate(train, args.warmup, args.seconds))
        heads1.append(headless_rate(train, args.warmup, args.seconds, one_thread=True))
        apps.append(app_rate(lab, args.warmup, args.seconds))
        print(f"  headless {heads[-1]:.1f} steps/s (one BLAS thread: {heads1[-1]:.1f}), "
              f"in the lab {apps[-1]:.1f} steps/s")
    app, head = statistics.median(apps), max(statistics.median(heads),
                                              statistics.median(heads1))
    ratio = app / head
    print(f"in the lab {app:.1f} steps/s vs headless {head:.1f} steps/s (the faster headless "
          f"variant; medians of {args.rounds}): {ratio:.0%} (goal >= {GOAL:.0%}): "
          f"{'met' if ratio >= GOAL else 'MISSED'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, OSError, ValueError, IndexError) as exc:
        print(f"bench/throughput.py: {exc}", file=sys.stderr)
        sys.exit(1)
