"""Key latency while the lab trains at full speed (goal: median ≤ 20 ms, worst of 10 ≤ 60 ms).

    python bench/latency.py [--cmd "rnn-tutor lab"] [--presses 10]

Runs the lab in an 80×24 pty, waits until it trains, then presses space and times, from outside,
until "paused" shows on the status line; then space again until it is gone. The floor is the same
measurement against a trivial Textual app that shows "paused" on space (same terminal, same run);
the ratio says what the lab adds. Exits non-zero only on an error, not when a goal is missed.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys

from ptyterm import PtyTerm, lab_command, repo_root

GOAL_MEDIAN_MS, GOAL_WORST_MS = 20.0, 60.0


def status_says_paused(term) -> bool:
    return "paused" in "\n".join(term.lines[-4:])


def measure(argv: list[str], presses: int, ready: str, cols: int, rows: int,
            warmup: float) -> list[float]:
    """Milliseconds from each space to the screen showing (or dropping) "paused"."""
    times = []
    rng = random.Random(0)
    with PtyTerm(argv, cols=cols, rows=rows, cwd=repo_root()) as term:
        term.wait_for(lambda t: ready in t.text, timeout=60)
        term.settle(warmup)
        for i in range(presses):
            want = i % 2 == 0                       # even presses pause, odd ones resume
            sent = term.send("space")
            shown = term.wait_for(lambda t: status_says_paused(t) == want, timeout=5)
            times.append((shown - sent) * 1000)
            term.settle(rng.uniform(0.25, 0.45))    # off the redraw beat
    return times


def trivial_app() -> None:
    """A bare Textual app that toggles "paused" on space: the floor."""
    from textual.app import App
    from textual.widgets import Static

    class Floor(App):
        CSS = "Static { dock: bottom; height: 2; }"
        BINDINGS = [("space", "toggle", "Pause"), ("q", "quit", "Quit")]

        def compose(self):
            yield Static("running  steps/s", id="s")

        def action_toggle(self):
            s = self.query_one("#s", Static)
            self.paused = not getattr(self, "paused", False)
            s.update("paused" if self.paused else "running  steps/s")

    Floor().run()


def summary(name: str, times: list[float]) -> tuple[float, float]:
    median, worst = statistics.median(times), max(times)
    print(f"{name}: median {median:.1f} ms, worst {worst:.1f} ms over {len(times)} presses "
          f"({', '.join(f'{t:.0f}' for t in times)})")
    return median, worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmd", help="command that opens the lab (default: rnn-tutor lab)")
    ap.add_argument("--presses", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--serve-trivial", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_trivial:
        trivial_app()
        return 0
    lab = lab_command(args.cmd)
    floor_cmd = [sys.executable, __file__, "--serve-trivial"]
    print(f"command: {' '.join(lab)}  (80x24, training at full speed)")
    lab_times = measure(lab, args.presses, "steps/s", 80, 24, args.warmup)
    floor_times = measure(floor_cmd, args.presses, "steps/s", 80, 24, 1.0)
    median, worst = summary("lab", lab_times)
    floor_median, _ = summary("floor (trivial Textual app)", floor_times)
    verdict = {True: "met", False: "MISSED"}
    print(f"goal: median <= {GOAL_MEDIAN_MS:g} ms ({verdict[median <= GOAL_MEDIAN_MS]}), "
          f"worst <= {GOAL_WORST_MS:g} ms ({verdict[worst <= GOAL_WORST_MS]})")
    print(f"lab / floor median: {median / floor_median:.2f}x")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (TimeoutError, OSError) as exc:
        print(f"bench/latency.py: {exc}", file=sys.stderr)
        sys.exit(1)
