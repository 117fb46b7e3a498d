"""Check a learner's exercise file against the engine's exact numbers and finite differences.

`check_file` runs the file's functions on each random case in a limited child process
(`runner.py`), then names every output or gradient that is wrong: a wrong shape, a transposed
array, a wrong value and by how much (for results along time, from which step on), and whether
each wrong gradient at least agrees with finite differences of the learner's own forward (which
says whether the forward or the backward is at fault). Never raises on the learner's account."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tutor import textsafe

from .cases import Case, make_cases
from .catalog import Exercise
from .runner import OUTPUT_BYTES, Limits, run

RTOL, ATOL = 1e-6, 1e-9                  # against the engine: the same maths, other rounding
FD_RTOL, FD_ATOL = 1e-5, 1e-7            # against central differences with ε = 1e-6
PRINTED_LINES = 5


@dataclass
class CheckResult:
    number: int
    file: str
    status: str                          # "pass", "fail", "todo" (not written yet), "error"
    summary: str                         # one line
    details: list[str] = field(default_factory=list)
    printed: str = ""                    # the tail of what the learner's code printed
    failing: str | None = None           # the first function found at fault, if known
    source: str = ""                     # the learner's line an error points at
    wrong: tuple[str, ...] = ()          # the names of the wrong results

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def lines(self) -> list[str]:
        """The report as terminal lines, with what the learner's code printed at the end."""
        out = [self.summary] + ["  " + d for d in self.details]
        printed = [textsafe.clean(s) for s in self.printed.splitlines() if s.strip()]
        if printed:
            out.append(f"  your code printed ({min(len(printed), PRINTED_LINES)} last lines):")
            out += ["    " + s[:200] for s in printed[-PRINTED_LINES:]]
        return out


def check_file(exercise: Exercise, path: Path, limits: Limits | None = None,
               seed: int | None = None, cancel=None) -> CheckResult:
    """Check one file. `cancel`, a threading.Event, stops a running check at once."""
    name = exercise.file
    path = Path(path).absolute()             # the child runs in another folder
    if not path.is_file():
        return CheckResult(exercise.number, name, "error",
                           f"{name}: missing; run `rnn-tutor exercises` to create it again")
    rng = np.random.default_rng(seed)
    cases = make_cases(exercise.number, rng)
    outcome = run(path, [c.to_child() for c in cases], limits or Limits(), cancel)
    if outcome.error is not None:
        status, line = _error_line(name, outcome.error, limits or Limits())
        flood = outcome.error.get("kind") == "output"
        return CheckResult(exercise.number, name, status, line,
                           printed="" if flood else outcome.printed,
                           failing=outcome.error.get("function"),
                           source=_source_line(path, outcome.error.get("line")))
    total = len(cases[0].expected)
    for i, (case, got, bad) in enumerate(zip(cases, outcome.cases, outcome.bad)):
        with np.errstate(all="ignore"):
            findings = compare(case, got, bad)
        if findings:
            first = findings[0][0].split("/")[0]
            failing = next((c["fn"] for c in case.calls if first in c["returns"]), None)
            which = "the first case" if i == 0 else "the second case" if i == 1 else f"case {i + 1}"
            summary = (f"{name}: {len(findings)} of {total} results wrong on {which} "
                       f"({case.dims})")
            return CheckResult(exercise.number, name, "fail", summary,
                               [text for _, text in findings], outcome.printed, failing,
                               wrong=tuple(n for n, _ in findings))
    fd = " and agree with finite differences of your forward" if cases[0].fd else ""
    return CheckResult(exercise.number, name, "pass",
                       f"{name}: passed: all {total} results match the engine on "
                       f"{len(cases)} random cases{fd}", printed=outcome.printed)


def _source_line(path: Path, line) -> str:
    if not isinstance(line, int) or line < 1:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for i, text in enumerate(f, 1):
                if i == line:
                    return textsafe.clean(text.strip())[:160]
    except OSError:
        pass
    return ""


def _error_line(name: str, error: dict, limits: Limits) -> tuple[str, str]:
    kind, message = error.get("kind"), textsafe.clean(str(error.get("message") or ""))
    line, function = error.get("line"), error.get("function")
    where = f"{name}:{line}:" if isinstance(line, int) else f"{name}:"
    if function:
        where += f" in {function}():"
    if kind == "todo":
        return "todo", f"{name}: not written yet: {function}() still raises NotImplementedError"
    if kind in ("shape", "missing"):
        return "error", f"{name}: {message}"
    if kind == "syntax":
        return "error", f"{where} {message}"
    if kind == "time":
        return "error", (f"{where} stopped after {limits.seconds:g} s (the time "
                         "limit): an endless loop?")
    if kind == "memory":
        return "error", (f"{where} ran out of memory (the limit is "
                         f"{limits.memory_bytes / 2**20:.0f} MiB)")
    if kind == "output":
        return "error", f"{where} printed far too much (over {OUTPUT_BYTES >> 20} MiB); stopped"
    if kind == "signal":
        return "error", f"{name}: the checking process was killed ({message})"
    if kind == "exit":
        return "error", f"{name}: the checking process ended without results ({message})"
    if kind == "cancelled":
        return "error", f"{name}: check cancelled"
    if kind == "start":
        return "error", f"{name}: could not start the checking process ({message})"
    return "error", f"{where} {message}"


def compare(case: Case, got: dict[str, np.ndarray],
            bad: dict[str, str]) -> list[tuple[str, str]]:
    """(name, one line) per wrong result, in the order the functions return them."""
    findings = []
    for name, want in case.expected.items():
        shown = _label(name)
        if name in bad or name.split("/")[0] in bad:
            what = bad.get(name) or bad.get(name.split("/")[0])
            findings.append((name, f"{shown}: you returned {what}, not an array"))
            continue
        if name not in got:
            findings.append((name, f"{shown}: missing from what you returned"))
            continue
        problem = _compare_one(shown, got[name], want, case.shapes.get(name, ""),
                               case.time.get(name), case.gates if name in case.stacked else "",
                               case.hidden, case.dims)
        if problem is None:
            continue
        fd_input = case.fd_of.get(name)
        if fd_input and "transposed" not in problem and ("fd:" + fd_input) in got and got[name].shape == want.shape:
            numeric = got["fd:" + fd_input]
            if np.allclose(got[name], numeric, rtol=FD_RTOL, atol=FD_ATOL):
                problem += ("; it does agree with finite differences of your forward, so "
                            "look at the forward first")
            else:
                problem += ("; it disagrees with finite differences of your forward too "
                            f"(largest gap {_gap(got[name], numeric):.3g})")
        findings.append((name, problem))
    for name, fd_input in case.fd_of.items():         # right results, inconsistent forward
        numeric = got.get("fd:" + fd_input)
        mine = got.get(name)
        if numeric is None or mine is None or mine.shape != numeric.shape:
            continue
        if (np.allclose(mine, case.expected[name], rtol=RTOL, atol=ATOL)
                and not np.allclose(mine, numeric, rtol=FD_RTOL, atol=FD_ATOL)):
            findings.append((name, f"{name} matches the engine but not finite differences of "
                             "your forward: does it depend on anything but its arguments?"))
    return findings


def _label(name: str) -> str:
    if "/" in name:
        outer, key = name.split("/", 1)
        return f"{outer}[{key!r}]"
    return name


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _close(a, b) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _symbolic(shape: tuple, dims: str) -> str:
    """' = (B, I)' when every size in shape is one of the case's dimensions, unambiguously."""
    names: dict[int, list[str]] = {}
    for part in dims.split(","):
        key, _, value = part.strip().partition("=")
        if value.isdigit() and key.isalpha():
            names.setdefault(int(value), []).append(key)
    if not shape or any(len(names.get(n, [])) != 1 for n in shape):
        return ""
    inside = ", ".join(names[n][0] for n in shape)
    return f" = ({inside},)" if len(shape) == 1 else f" = ({inside})"


def _compare_one(name, got, want, symbolic, along_time, gates="", hidden=0,
                 dims="") -> str | None:
    expected_shape = f"{symbolic} = {want.shape}" if symbolic.startswith("(") else str(want.shape)
    if got.shape != want.shape:
        if got.size == want.size and got.ndim == want.ndim and got.ndim > 1:
            for perm in itertools.permutations(range(got.ndim)):
                if _close(np.transpose(got, perm), want) and perm != tuple(range(got.ndim)):
                    return _permuted(name, got, expected_shape)
        if got.size == want.size and _close(got.reshape(want.shape), want):
            return (f"{name} has the right numbers but shape {got.shape}; it should be "
                    f"{expected_shape}")
        return (f"{name} has shape {got.shape}{_symbolic(got.shape, dims)}; it should be "
                f"{expected_shape}")
    if not np.all(np.isfinite(got)):
        return f"{name} holds NaN or infinity"
    if _close(got, want):
        return None
    if got.ndim == 2 and got.shape[0] == got.shape[1] and _close(got.T, want):
        return _permuted(name, got, expected_shape)
    if _close(-got, want):
        return f"{name} has the wrong sign everywhere"
    if along_time and got.shape[0] > 1:
        return _along_time(name, got, want, along_time)
    if gates and got.ndim in (1, 2) and got.shape[0] == len(gates) * hidden:
        return _by_gate(name, got, want, gates, hidden)
    diff = np.abs(got - want)
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
    at = f" at {list(map(int, idx))}" if got.ndim else ""
    return (f"{name} is wrong: largest error {diff[idx]:.3g}{at} (expected {want[idx]:.6g}, "
            f"got {got[idx]:.6g})")


def _by_gate(name, got, want, gates, H) -> str:
    """Which gates' row blocks are wrong, in the stacked layout."""
    wrong = [k for k in range(len(gates))
             if not np.allclose(got[k * H:(k + 1) * H], want[k * H:(k + 1) * H],
                                rtol=RTOL, atol=ATOL)]
    blocks = ", ".join(f"{gates[k]} (rows {k * H}:{(k + 1) * H})" for k in wrong)
    diff = np.abs(got - want)
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
    which = "gate" if len(wrong) == 1 else "gates"
    return (f"{name} is wrong in the block of {which} {blocks}: largest error {diff[idx]:.3g} "
            f"at {list(map(int, idx))} (expected {want[idx]:.6g}, got {got[idx]:.6g})")


def _permuted(name, got, expected_shape) -> str:
    if got.ndim == 2:
        return (f"{name} is transposed: you returned {name}ᵀ; it should be {expected_shape}, "
                "the layout of what it is the gradient of")
    return f"{name} has its axes in another order: you returned {got.shape}, not {expected_shape}"


def _along_time(name, got, want, direction) -> str:
    """Which steps are wrong, as t = 1 … T. Forward errors start at some step and carry on;
    backward errors start at some step and carry back towards t = 1."""
    T = got.shape[0]
    wrong = [t for t in range(T) if not np.allclose(got[t], want[t], rtol=RTOL, atol=ATOL)]
    steps = [t + 1 for t in wrong]
    first = wrong[0] if direction == "forward" else wrong[-1]
    if got.ndim == 1:
        detail = f"at t = {first + 1} expected {want[first]:.6g}, got {got[first]:.6g}"
    else:
        detail = f"at t = {first + 1} the largest error is {_gap(got[first], want[first]):.3g}"
    if direction == "forward" and steps == list(range(steps[0], T + 1)):
        span = f"from t = {steps[0]} on" + (
            "" if steps[0] == 1 else " (right at t = 1)" if steps[0] == 2
            else f" (right at t = 1 … {steps[0] - 1})")
    elif direction == "backward" and steps == list(range(1, steps[-1] + 1)):
        span = f"from t = {steps[-1]} back to t = 1" + (
            "" if steps[-1] == T else f" (right at t = {T})" if steps[-1] == T - 1
            else f" (right at t = {steps[-1] + 1} … {T})")
    else:
        span = "at t = " + ", ".join(map(str, steps))
    return f"{name} is wrong {span}; {detail}"
