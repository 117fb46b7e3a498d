"""Runs a learner's exercise file: started by `runner.py` as `python -I _child.py WORKDIR`.

Standalone on purpose (NumPy and the standard library only, nothing of the tutor): the process
gets the learner's file, the inputs in WORKDIR/in*.npz and the calls to make in WORKDIR/spec.json,
and writes back only arrays (WORKDIR/out*.npz) and a status (WORKDIR/status.json). Its limits are
set here, first thing, before the learner's code or even NumPy is loaded."""
import errno
import json
import os
import resource
import signal
import sys
import time
import traceback


class TimeUp(BaseException):
    """The time limit: raised where the learner's code is running, so its line is known."""


def limit(spec):
    mem = int(spec["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = max(1, int(spec["cpu_seconds"]))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    out = int(spec["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (out, out))

    def time_up(signum, frame):
        raise TimeUp("cpu" if signum == signal.SIGXCPU else "wall")
    signal.signal(signal.SIGXCPU, time_up)
    signal.signal(signal.SIGALRM, time_up)
    signal.setitimer(signal.ITIMER_REAL, float(spec["wall_seconds"]))


class Failure(Exception):
    def __init__(self, kind, message, line=None, function=None):
        super().__init__(message)
        self.kind, self.message, self.line, self.function = kind, message, line, function


def learner_line(tb, path):
    """The last line of the learner's file in a traceback."""
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == path:
            line = lineno
    return line


def first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def call(ns, path, name, args):
    fn = ns.get(name)
    if not callable(fn):
        raise Failure("missing", f"there is no function {name}() in the file", function=name)
    try:
        return fn(*args)
    except NotImplementedError:
        raise Failure("todo", f"{name}() is not written yet", function=name) from None
    except TimeUp as e:
        raise Failure("time", str(e), learner_line(e.__traceback__, path), name) from None
    except MemoryError as e:
        raise Failure("memory", "", learner_line(e.__traceback__, path), name) from None
    except RecursionError as e:
        raise Failure("error", "RecursionError: endless recursion",
                      learner_line(e.__traceback__, path), name) from None
    except OSError as e:
        kind = "output" if e.errno == errno.EFBIG else "error"
        raise Failure(kind, first_line(e), learner_line(e.__traceback__, path), name) from None
    except SystemExit as e:
        raise Failure("error", f"called exit() (code {e.code})",
                      learner_line(e.__traceback__, path), name) from None
    except Exception as e:
        raise Failure("error", first_line(e), learner_line(e.__traceback__, path), name) from None


def unpack(result, name, returns):
    """The function's result as a list of len(returns) values."""
    n = len(returns)
    if n == 1:
        return [result]
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = (f"{len(result)} values" if isinstance(result, (tuple, list))
               else f"one {type(result).__name__}")
        raise Failure("shape", f"{name}() returned {got}; expected {n}: {', '.join(returns)}",
                      function=name)
    return list(result)


def as_array(np, value):
    """A float64 array, or the reason it is not one."""
    try:
        a = np.asarray(value)
    except Exception:
        return None, f"a {type(value).__name__}"
    if a.dtype.kind not in "fiub":
        return None, f"a {type(value).__name__}" + (" of objects" if a.dtype.kind == "O" else "")
    return a.astype(np.float64), None


def run_case(np, ns, path, case, inputs):
    values = {}
    for key, a in inputs.items():
        if "/" in key:
            prefix, sub = key.split("/", 1)
            values.setdefault(prefix, {})[sub] = a
        else:
            values[key] = a
    scalars = set(case.get("scalars", []))

    def arg(name):
        v = values[name]
        if name in scalars:
            return float(v)
        if isinstance(v, dict):
            return {k: a.copy() for k, a in v.items()}
        return v.copy() if hasattr(v, "copy") else v

    out, bad = {}, {}
    for c in case["calls"]:
        result = call(ns, path, c["fn"], [arg(a) for a in c["args"]])
        for name, value in zip(c["returns"], unpack(result, c["fn"], c["returns"])):
            values[name] = value
            if name in c.get("opaque", []):
                continue
            if name in c.get("dicts", []):
                if not isinstance(value, dict):
                    bad[name] = f"a {type(value).__name__}, not a dict"
                    continue
                for k, v in value.items():
                    a, why = as_array(np, v)
                    if why:
                        bad[f"{name}/{k}"] = why
                    else:
                        out[f"{name}/{k}"] = a
                continue
            a, why = as_array(np, value)
            if why:
                bad[name] = why
            else:
                out[name] = a
    for fd in case.get("fd", []):
        numeric_grads(np, ns, path, fd, values, arg, out)
    return out, bad


def numeric_grads(np, ns, path, fd, values, arg, out):
    """Central differences of Σ_k sum(weight_k · output_k) of the learner's own forward."""
    eps = float(fd["eps"])
    weights = {int(k): np.asarray(values[w], dtype=np.float64) for k, w in fd["weights"].items()}

    def loss(args):
        res = unpack(call(ns, path, fd["fn"], args), fd["fn"], fd["returns"])
        return sum(float(np.sum(w * np.asarray(res[k], dtype=np.float64)))
                   for k, w in weights.items())
    for name in fd["wrt"]:
        args = [arg(a) for a in fd["args"]]
        pos = fd["args"].index(name)
        base = np.asarray(args[pos], dtype=np.float64)
        g = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            for sign in (1.0, -1.0):
                a = base.copy()
                a[idx] += sign * eps
                args[pos] = a
                g[idx] += sign * loss(args) / (2 * eps)
        out["fd:" + name] = g


def main():
    work = sys.argv[1]
    with open(os.path.join(work, "spec.json"), encoding="utf-8") as f:
        spec = json.load(f)
    status = {"ok": False, "cases": []}

    def finish():
        with open(os.path.join(work, "status.json"), "w", encoding="utf-8") as f:
            json.dump(status, f)
    try:
        limit(spec)
        import numpy as np
        reserve = bytearray(8 << 20)         # given back on MemoryError, to report it
        path = spec["file"]
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            raise Failure("error", f"cannot read the file ({e.strerror or e})") from None
        ns = {"__name__": "__exercise__", "__file__": path, "__builtins__": __builtins__}
        started = time.perf_counter()
        try:
            exec(compile(source, path, "exec"), ns)
        except SyntaxError as e:
            raise Failure("syntax", f"{type(e).__name__}: {e.msg}", e.lineno) from None
        except Failure:
            raise
        except BaseException as e:
            kind = {TimeUp: "time", MemoryError: "memory"}.get(type(e), "error")
            raise Failure(kind, "" if kind != "error" else first_line(e),
                          learner_line(e.__traceback__, path)) from None
        for i, case in enumerate(spec["cases"]):
            with np.load(os.path.join(work, f"in{i}.npz"), allow_pickle=False) as z:
                inputs = {k: z[k] for k in z.files}
            with np.errstate(all="ignore"):
                out, bad = run_case(np, ns, path, case, inputs)
            np.savez(os.path.join(work, f"out{i}.npz"), **out)
            status["cases"].append({"bad": bad})
        status["ok"] = True
        status["seconds"] = time.perf_counter() - started
    except Failure as e:
        reserve = None                       # noqa: F841
        status["error"] = {"kind": e.kind, "message": e.message, "line": e.line,
                           "function": e.function}
    except TimeUp as e:
        status["error"] = {"kind": "time", "message": str(e), "line": None, "function": None}
    except MemoryError:
        reserve = None                       # noqa: F841
        status["error"] = {"kind": "memory", "message": "", "line": None, "function": None}
    except Exception as e:                   # e.g. results too big to write
        kind = "output" if isinstance(e, OSError) and e.errno == errno.EFBIG else "error"
        status["error"] = {"kind": kind, "message": first_line(e), "line": None,
                           "function": None}
    finish()


if __name__ == "__main__":
    main()
