"""Training steps per second of a learner's own cell (`StepwiseCell`, one Python call per
timestep) against the engine's cell, on the lab's default settings (adding, T=50, H=32, B=32,
float32). The learner's code is stood in for by the reference step functions
(`tutor/engine/reference.py`), the answer every exercise is checked against.

    python bench/own_cell.py [--seconds 3] [--rounds 3] [--seq-len 50]

Runs in this process, one BLAS thread (as the lab's worker does); the engine and the stepwise
cell alternate within each round, and each rate is the median over the rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tutor.blas import ONE_THREAD  # noqa: E402

os.environ.update(ONE_THREAD)

from tutor.engine import reference as ref  # noqa: E402
from tutor.engine.cells.stepwise import StepwiseCell  # noqa: E402
from tutor.engine.run import Run  # noqa: E402
from tutor.engine.settings import Settings  # noqa: E402


def rate(settings: Settings, own: bool, seconds: float) -> float:
    cell = StepwiseCell(settings.cell, *ref.STEPS[settings.cell]) if own else None
    run = Run(settings, implementation=cell)
    for _ in range(3):
        run.step()                            # warm-up: buffers, first-call costs
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run.attach_mechanism(run.step(), jacobian=False)   # what the lab asks of each step
        steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=50)
    args = ap.parse_args()
    print("| cell | engine steps/s | your cell's steps/s | slower by |")
    print("|---|---|---|---|")
    for cell in ("rnn", "lstm", "gru"):
        s = Settings(cell=cell, task="adding", seq_len=args.seq_len)
        engine, own = [], []
        for _ in range(args.rounds):
            engine.append(rate(s, False, args.seconds))
            own.append(rate(s, True, args.seconds))
        e, o = statistics.median(engine), statistics.median(own)
        print(f"| {cell} | {e:.0f} | {o:.0f} | {e / o:.1f}× |")
    print(f"\n(T={args.seq_len}, H=32, B=32, float32; `python bench/own_cell.py "
          f"--seconds {args.seconds:g} --rounds {args.rounds}`)")


if __name__ == "__main__":
    main()
