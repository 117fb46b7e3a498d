"""The foundation's measured outcomes, on several seeds, as the Markdown table in README.

    python bench/outcomes.py [--seeds 0 1 2] [--steps 2000]

Each row is a single `rnn-tutor train` run per seed (the same engine, called in-process);
the commands are printed beside the table so any row can be rerun from the shell.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tutor.engine import Run, Settings  # noqa: E402


def train(steps: int, **kw):
    run = Run(Settings(**kw))
    losses = []
    for _ in range(steps):
        rec = run.step()
        if rec is None:
            break
        losses.append(rec.loss)
    return run, losses


def step0_ratio(**kw) -> float:
    g = Run(Settings(**kw)).step().grad_norm_per_step
    return float(g[0] / g[-1])


def diverged_at(steps: int, **kw):
    run, _ = train(steps, **kw)
    return run.diverged_at


def fmt_div(values):
    return ", ".join("none" if v is None else str(v) for v in values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    seeds, steps = args.seeds, args.steps
    t0 = time.time()
    rows = []

    # Long-range contrast on the adding problem, defaults otherwise.
    for cell in ("rnn", "lstm", "gru"):
        finals = []
        for seed in seeds:
            _, losses = train(steps, cell=cell, task="adding", seq_len=50, seed=seed)
            finals.append(statistics.fmean(losses[-100:]))
        cmd = f"rnn-tutor train --cell {cell} --task adding --seq-len 50 --steps {steps}"
        rows.append((f"adding, T=50, {cell}: mean MSE of the last 100 steps (baseline 0.167)",
                     ", ".join(f"{v:.4f}" for v in finals), cmd))

    # Exploding: step-0 gradient ratio ‖∂L/∂h_1‖/‖∂L/∂h_T‖ for a tanh RNN.
    for radius in (1.0, 1.5, 3.0):
        ratios = [step0_ratio(cell="rnn", task="adding", seq_len=50, radius=radius, seed=s)
                  for s in seeds]
        cmd = f"rnn-tutor train --cell rnn --task adding --seq-len 50 --radius {radius} --steps 1"
        rows.append((f"tanh RNN radius {radius}: ‖∂L/∂h_1‖/‖∂L/∂h_T‖ at step 0 "
                     f"(median {statistics.median(ratios):.3g})",
                     ", ".join(f"{v:.3g}" for v in ratios), cmd))

    # Where the NaN comes from: recurrence (irnn) versus output head (tanh rnn).
    cases = [
        ("irnn radius 1.1, sgd lr 0.01: diverged at step",
         dict(cell="irnn", radius=1.1, optimizer="sgd", lr=0.01), ""),
        ("… same with the head frozen", dict(cell="irnn", radius=1.1, optimizer="sgd", lr=0.01,
                                            freeze_head=True), " --freeze-head"),
        ("… same with norm clipping at 1", dict(cell="irnn", radius=1.1, optimizer="sgd",
                                               lr=0.01, clip=1.0), " --clip 1"),
        ("tanh rnn radius 1.5, sgd lr 0.1: diverged at step",
         dict(cell="rnn", radius=1.5, optimizer="sgd", lr=0.1), ""),
        ("… same with the head frozen", dict(cell="rnn", radius=1.5, optimizer="sgd", lr=0.1,
                                            freeze_head=True), " --freeze-head"),
    ]
    for label, kw, flag in cases:
        at = [diverged_at(300, task="adding", seq_len=50, seed=s, **kw) for s in seeds]
        cmd = (f"rnn-tutor train --cell {kw['cell']} --task adding --seq-len 50 --radius "
               f"{kw['radius']} --optimizer sgd --lr {kw['lr']} --steps 300{flag}")
        rows.append((label + " (of 300)", fmt_div(at), cmd))

    print(f"Seeds {', '.join(map(str, seeds))}; add `--seed S` to a command to rerun one.\n")
    print("| outcome | per seed | command |")
    print("|---|---|---|")
    for label, values, cmd in rows:
        print(f"| {label} | {values} | `{cmd}` |")
    print(f"\n({time.time() - t0:.0f} s on this machine; `python bench/outcomes.py "
          f"--seeds {' '.join(map(str, seeds))} --steps {steps}`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
