"""Check every lesson's claims about the lab on several seeds, at full length.

    python bench/lessons.py                      # each claim on the preset's seed and the next two
    python bench/lessons.py --seeds 0,1,2,3,4    # these seeds instead (claims about a named
                                                 # seed, such as "seed 4 vanishes", keep theirs)
    python bench/lessons.py --lesson gru         # only some lessons (slug or number; repeatable)

The claims themselves live in tests/test_lesson_claims.py, where the default test run checks each
one quickly on the preset's seed. Every ```predict checkpoint is a claim too: on each seed the run
must measure a value inside the range of the option marked '+', with margin. This prints the command line, then a Markdown table: lesson,
claim, seeds, the value measured on each seed, and pass or fail. Exit status 1 if a claim fails.

It also checks that the lab lets every run a claim relies on go on long enough: a lab run stops
by itself at the lesson's step budget or when its loss levels off (tutor/lab/ending.py), so for
each run a lesson's claims trained, the step at which the lab would have stopped it must not come
before the last step the claim needed. A second table lists each lesson's tightest run.
"""
from __future__ import annotations

import os

# One BLAS thread, set before NumPy loads: the engine's matrices are small, and on a shared
# machine OpenBLAS's threads only slow it down (the lab's worker process does the same).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_claims():
    """The registry from tests/test_lesson_claims.py, imported by path (tests is no package)."""
    path = ROOT / "tests" / "test_lesson_claims.py"
    spec = importlib.util.spec_from_file_location("lesson_claims", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up while loading
    spec.loader.exec_module(module)
    return module


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers like 0,1,2, not {text!r}")
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError("give at least one seed, none negative")
    return seeds


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default=None,
                        help="comma-separated seeds (default: the preset's seed and the next two)")
    parser.add_argument("--lesson", action="append", default=[],
                        help="only this lesson, by slug or number (repeatable)")
    args = parser.parse_args(argv)
    if args.seeds is not None and len(args.seeds) < 3:
        print("note: the lessons promise their claims on at least 3 seeds", file=sys.stderr)

    claims = load_claims()
    restore = claims.single_thread_blas()
    lessons = claims.lessons_by_slug()
    wanted = set(args.lesson)
    chosen = [lesson for lesson in sorted(lessons.values(), key=lambda l: l.number)
              if not wanted or lesson.slug in wanted or str(lesson.number) in wanted
              or f"{lesson.number:02d}" in wanted]
    unknown = wanted - {l.slug for l in lessons.values()} - {str(l.number) for l in lessons.values()} \
        - {f"{l.number:02d}" for l in lessons.values()}
    if unknown:
        print(f"no such lesson: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    command = "python bench/lessons.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    print(f"$ {command}\n")
    print("| lesson | claim | seeds | measured (per seed) | result |")
    print("|---|---|---|---|---|")
    failed = 0
    from tutor.lab.ending import DEFAULT_BUDGET, first_plateau
    trained = []
    real_trace = claims.trace

    def recording_trace(settings, steps, stop=None):
        t = real_trace(settings, steps, stop)
        if all(t is not seen for seen in trained):
            trained.append(t)
        return t

    claims.trace = recording_trace
    endings = []
    for lesson in chosen:
        trained.clear()
        for claim in claims.CLAIMS.get(lesson.slug, []):
            seeds = claims.seeds_for(claim, lesson, args.seeds)
            result = claim.evaluate(lesson, seeds, True)
            failed += not result.ok
            shown = "; ".join(f"{s}: {v}" for s, v in zip(seeds, result.shown)) if seeds \
                else "; ".join(result.shown)
            print(f"| {lesson.number:02d} {lesson.slug} | {cell(claim.text)} | "
                  f"{', '.join(map(str, seeds)) or '—'} | {cell(shown)} | "
                  f"{'pass' if result.ok else '**FAIL**'} |", flush=True)
        budget = getattr(lesson.lab, "budget", None) or DEFAULT_BUDGET
        margins = []
        for t in trained:
            plateau = first_plateau(t.loss, t.run.baseline.loss)
            end = min(budget, plateau or budget)
            margins.append((end - t.steps, end, t))
        if margins:
            margin, end, t = min(margins, key=lambda m: m[0])
            s = t.run.settings
            why = "budget" if end == budget else "plateau"
            endings.append((lesson, t.steps, end, why, f"{s.cell} {s.task} T={s.seq_len} "
                            f"seed {s.seed}", margin >= 0))
            failed += margin < 0
        claims._TRACES.clear()
    claims.trace = real_trace
    print("\n| lesson | tightest run | steps its claims need | the lab stops it at | result |")
    print("|---|---|---|---|---|")
    for lesson, need, end, why, run, ok in endings:
        print(f"| {lesson.number:02d} {lesson.slug} | {run} | {need} | {end} ({why}) | "
              f"{'pass' if ok else '**FAIL**'} |")
    restore()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
