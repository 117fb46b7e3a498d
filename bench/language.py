"""The language task: time to insight at the lesson's preset, and the gap-30 contrast.

    python bench/language.py                    # both, on seeds 0-4
    python bench/language.py --seeds 0,1,2      # other seeds
    python bench/language.py --only insight     # or: contrast, batch
    python bench/language.py --only insight --hidden 48 --lr 0.02   # another preset to compare

- insight: at the preset of lessons/*-language.md (or with --hidden, --lr changed), train the
  LSTM until the 20-step average accuracy on the language word reaches 90%; per seed the step,
  the wall time and the process's CPU time, then their medians. The goal: every seed under
  30 s of training on one core.
- contrast: exactly what `rnn-tutor train --task language --cell C --seq-len 30 --steps 3000`
  does (the command line's own defaults for the task), for rnn, lstm and gru: the mean accuracy
  on the language word over the last 100 steps, per seed.
- batch: how long generating one batch takes, against one training step, in the same run.

The machine may be shared: CPU time is the process's own, wall time includes waiting for a core.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor import cli  # noqa: E402
from tutor.engine import Run  # noqa: E402
from tutor.lessons import load_lessons  # noqa: E402

WINDOW = 20
GOAL = 0.9
LIMIT_S = 30.0


def lesson_settings():
    lessons = [l for l in load_lessons(ROOT / "lessons").lessons if l.slug.endswith("language")]
    if not lessons:
        raise SystemExit("no lessons/NN-...language.md found")
    return lessons[0].settings


def describe(s) -> str:
    return (f"{s.cell}, T = {s.seq_len}, H = {s.hidden}, batch {s.batch}, "
            f"{s.optimizer} lr {s.lr:g}")


def cli_settings(cell: str, seed: int, T: int = 30, steps: int = 3000):
    args = cli.build_parser().parse_args(["train", "--task", "language", "--cell", cell,
                                          "--seq-len", str(T), "--steps", str(steps),
                                          "--seed", str(seed)])
    return cli.settings_from(args)


def time_to_insight(settings, max_steps: int = 5000):
    run = Run(settings)
    accs = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while run.steps < max_steps:
        rec = run.step()
        if rec is None:
            break
        accs.append(rec.accuracy)
        if len(accs) >= WINDOW and np.mean(accs[-WINDOW:]) >= GOAL:
            return run.steps, time.perf_counter() - wall0, time.process_time() - cpu0
    return None, time.perf_counter() - wall0, time.process_time() - cpu0


def tail_accuracy(settings, steps: int, tail: int = 100) -> float:
    run = Run(settings)
    accs = [run.step().accuracy for _ in range(steps)]
    return float(np.mean(accs[-tail:]))


def bench_batch(settings, n: int = 200):
    run = Run(settings)
    run.step()
    t0 = time.process_time()
    for _ in range(n):
        run.next_batch()
    per_batch = (time.process_time() - t0) / n
    t0 = time.process_time()
    for _ in range(n // 4):
        run.step()
    per_step = (time.process_time() - t0) / (n // 4)
    return per_batch, per_step


def _contrast_job(job) -> float:
    cell, seed, steps = job
    return tail_accuracy(cli_settings(cell, seed, steps=steps), steps)


def seed_list(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4])
    parser.add_argument("--only", choices=("insight", "contrast", "batch"), action="append")
    parser.add_argument("--steps", type=int, default=3000, help="contrast steps (default 3000)")
    parser.add_argument("--hidden", type=int, help="insight: this hidden size, not the preset's")
    parser.add_argument("--lr", type=float, help="insight: this learning rate, not the preset's")
    parser.add_argument("--jobs", type=int, default=1,
                        help="contrast runs in this many processes at once (default 1)")
    args = parser.parse_args(argv)
    parts = args.only or ["batch", "insight", "contrast"]
    print(f"$ python bench/language.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    failed = False

    if "batch" in parts:
        s = cli_settings("lstm", 0)
        per_batch, per_step = bench_batch(s)
        print(f"batch generation at T=30, B={s.batch}: {per_batch * 1e3:.2f} ms CPU; one lstm "
              f"training step (batch included): {per_step * 1e3:.1f} ms CPU; "
              f"ratio {per_batch / per_step:.1%}\n")

    if "insight" in parts:
        base = lesson_settings()
        base = base.replace(**{k: v for k, v in (("hidden", args.hidden), ("lr", args.lr))
                               if v is not None})
        print(f"time to insight: {describe(base)}: 20-step accuracy on the language word "
              f"≥ {GOAL:.0%}")
        print("| seed | step | wall s | CPU s |")
        print("|---|---|---|---|")
        cpus, walls, steps = [], [], []
        for seed in args.seeds:
            step, wall, cpu = time_to_insight(base.replace(seed=seed))
            print(f"| {seed} | {step if step else 'not reached'} | {wall:.1f} | {cpu:.1f} |",
                  flush=True)
            if step is None:
                failed = True
                cpu = wall = float("inf")
            cpus.append(cpu)
            walls.append(wall)
            steps.append(step or float("inf"))
        med, worst = statistics.median(cpus), max(cpus)
        print(f"median: step {statistics.median(steps):g}, wall {statistics.median(walls):.1f} s, "
              f"CPU {med:.1f} s; slowest seed: CPU {worst:.1f} s (goal: every seed under "
              f"{LIMIT_S:.0f} s) -> {'pass' if worst < LIMIT_S else 'FAIL'}\n")
        failed |= not worst < LIMIT_S

    if "contrast" in parts:
        print(f"contrast: rnn-tutor train --task language --cell C --seq-len 30 --steps "
              f"{args.steps} --seed S; mean accuracy on the language word, last 100 steps")
        print("| cell | " + " | ".join(f"seed {s}" for s in args.seeds) + " | verdict |")
        print("|---|" + "---|" * (len(args.seeds) + 1))
        cells = ("lstm", "gru", "rnn")
        jobs = [(cell, seed, args.steps) for cell in cells for seed in args.seeds]
        if args.jobs > 1:
            from multiprocessing import get_context
            with get_context("spawn").Pool(args.jobs) as pool:
                results = pool.map(_contrast_job, jobs)
        else:
            results = [_contrast_job(job) for job in jobs]
        by_cell = {cell: [] for cell in cells}
        for (cell, _, _), acc in zip(jobs, results):
            by_cell[cell].append(acc)
        for cell in cells:
            accs = by_cell[cell]
            if cell == "rnn":
                ok = all(a < 0.2 for a in accs)
                verdict = "near chance (< 20%)" if ok else "**not near chance**"
            else:
                ok = all(a >= GOAL for a in accs)
                verdict = "≥ 90%" if ok else "**below 90%**"
            failed |= not ok
            print(f"| {cell} | " + " | ".join(f"{a:.1%}" for a in accs) + f" | {verdict} |",
                  flush=True)
        print(f"(chance: {1 / 10:.0%}; the task's settings: "
              f"{describe(cli_settings('lstm', 0, steps=args.steps))})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
