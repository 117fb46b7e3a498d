"""Engine training speed on one thread, against PyTorch when it is importable.

    python bench/engine.py                       # engine only (torch comparison skipped)
    /path/to/venv-with-torch/bin/python bench/engine.py     # the same, plus PyTorch

PyTorch is never a dependency of the project: install it in a side venv only to compare
(`pip install torch==2.13.0 numpy` takes the CPU build on this machine). The script pins
NumPy's BLAS and torch to one thread itself, before either is imported.

What it measures, all in the same run, timings interleaved so that a busy machine slows every
contender alike, each figure the median of repeated timings:
- the engine's training step (`Run.step()`: a fresh batch, forward, exact BPTT, the per-step
  norms ‖∂L/∂h_t‖, Adam) for rnn, irnn, lstm and gru at batch 32, T = 50, hidden 64 on `adding`;
- the matrix-multiply floor: the recurrent layer's GEMMs (forward, backward through time, weight
  gradients) timed one by one with NumPy at the step's own shapes in this run; their total is
  what a step would take if everything else were free;
- PyTorch, same task and batches: a cell loop (nn.RNNCell / LSTMCell / GRUCell over the steps,
  `h_t.retain_grad()` on each step, so every ‖∂L/∂h_t‖ is available as the chart needs), and
  the fused layer (nn.RNN / LSTM / GRU, forward + backward + Adam step, no per-step gradients);
- that the engine and PyTorch agree, in float64, on the loss, every parameter's gradient and
  the per-step norms, with the engine's weights taken from the torch modules by PyTorch's
  names (`Model.from_arrays`), for every cell and head;
- the engine at the lessons' shapes: batch 32, hidden 32, T = 50 and T = 200;
- at those shapes, the price of the per-step mechanism metrics (‖∂L/∂x_t‖, each step's share of
  the gradient, the state Jacobian's norms): a step without them, with them kept but not asked
  for, with them made at every step, and one Jacobian request; and a step with truncated
  backpropagation (`--truncate K`) against the full one.

    python bench/engine.py --cells lstm --runs 10

repeats only the main comparison in ten fresh processes, one after another, and prints each run's
ratios and their median, lowest and highest: a single run's ratio moves by a few percent with the
state of the machine and of the process (which memory it got, on which pages).
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from tutor.engine import Model, Run, Settings, get_task  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
except ImportError:
    torch = None

CELLS = ("rnn", "irnn", "lstm", "gru")
GATES = {"rnn": 1, "irnn": 1, "lstm": 4, "gru": 3}
MAIN = dict(batch=32, seq_len=50, hidden=64, task="adding")
APP = dict(batch=32, hidden=32, task="adding")


# ---- contenders: each has step(), one training step on a fresh batch ----

class EngineRunner:
    """metrics: "off" (the cells make no per-step mechanism metrics: the engine as it was
    before them), "kept" (each pass keeps what they need, nobody asks: a lab step between two
    updates) or "every step" (input_grad_norm_per_step and param_grad_norm_per_step made at
    every step, as `rnn-tutor train --log-every 1` does, without the Jacobian)."""
    label = "engine"

    def __init__(self, cell, task, batch, seq_len, hidden, seed=0, metrics="kept",
                 truncate=None):
        self.settings = Settings(cell=cell, task=task, batch=batch, seq_len=seq_len,
                                 hidden=hidden, seed=seed, truncate=truncate)
        self.metrics = metrics
        self.fresh()

    def fresh(self):
        self.run = Run(self.settings)
        self.run.model.cell.step_metrics = self.metrics != "off"

    def step(self):
        rec = self.run.step()
        if rec is None:                     # never expected here; keep timing something real
            self.fresh()
            rec = self.run.step()
        assert rec.grad_norm_per_step.shape == (self.settings.seq_len,)
        if self.metrics == "every step":
            self.run.attach_mechanism(rec, jacobian=False)
            assert rec.param_grad_norm_per_step.shape == (self.settings.seq_len,)


def _torch_modules(cell, I, H, O, fused, dtype, seed):
    torch.manual_seed(seed)
    kind = {"rnn": "RNN", "irnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    extra = {"nonlinearity": "relu"} if cell == "irnn" else {}
    if fused:
        rec = getattr(torch.nn, kind)(I, H, batch_first=True, **extra)
    else:
        rec = getattr(torch.nn, kind + "Cell")(I, H, **extra)
    head = torch.nn.Linear(H, O)
    return rec.to(dtype), head.to(dtype)


def _torch_loss(kind, Y, y, mask):
    """The engine's three heads. Y: (B, O) for many-to-one heads, (B, T, O) per step."""
    if kind == "regression":
        return F.mse_loss(Y, y)
    if kind == "classify":
        return F.cross_entropy(Y, y)
    m = torch.from_numpy(mask)
    return F.cross_entropy(Y[:, m].reshape(-1, Y.shape[-1]), y[:, m].reshape(-1))


def _cell_loop(cell, rec, x, keep_c=False):
    """Run a torch cell over x (B, T, I); every h_t (and c_t) keeps its gradient."""
    B, T, _ = x.shape
    h = x.new_zeros(B, rec.hidden_size)
    c = x.new_zeros(B, rec.hidden_size)
    hs, cs = [], []
    for t in range(T):
        if cell == "lstm":
            h, c = rec(x[:, t], (h, c))
            if keep_c:
                c.retain_grad()
                cs.append(c)
        else:
            h = rec(x[:, t], h)
        h.retain_grad()
        hs.append(h)
    return hs, cs


class TorchRunner:
    def __init__(self, cell, task, batch, seq_len, hidden, fused, seed=0):
        self.cell, self.fused = cell, fused
        self.label = "torch fused" if fused else "torch loop"
        self.task = get_task(task)
        self.B, self.T = batch, seq_len
        self.rec, self.head = _torch_modules(cell, self.task.input_size, hidden,
                                             self.task.output_size, fused, torch.float32, seed)
        self.opt = torch.optim.Adam(list(self.rec.parameters()) + list(self.head.parameters()),
                                    lr=0.01)
        self.rng = np.random.default_rng([seed, 1])

    def step(self):
        b = self.task.batch(self.rng, self.B, self.T, np.float32)
        x, y = torch.from_numpy(b.x), torch.from_numpy(b.y)
        self.opt.zero_grad()
        if self.fused:
            out = self.rec(x)[0]
            hs = None
        else:
            hs, _ = _cell_loop(self.cell, self.rec, x)
            out = torch.stack(hs, dim=1)
        Y = self.head(out) if self.task.head == "sequence" else self.head(out[:, -1])
        loss = _torch_loss(self.task.head, Y, y, b.mask)
        loss.backward()
        self.opt.step()
        if hs is not None:                   # the chart's per-step norms
            norms = torch.stack([h.grad.norm() for h in hs]).numpy()
            assert norms.shape == (self.T,)
        return loss.item()


def time_interleaved(runners, repeats, target_s):
    """Steps per CPU-second of each runner: the median of `repeats` timings, taken in rotation.
    CPU time of this process, not wall time: on a shared machine the time spent waiting for a
    core is not the contender's, and everything here runs on one thread."""
    clock = time.process_time
    per_timing = []
    for r in runners:
        for _ in range(3):
            r.step()
        t0 = clock()
        n = 0
        while clock() - t0 < target_s / 3:
            r.step()
            n += 1
        per_timing.append(max(3, round(n * target_s / max(clock() - t0, 1e-9))))
    rates = [[] for _ in runners]
    for rep in range(repeats):
        order = list(range(len(runners)))
        order = order[rep % len(order):] + order[:rep % len(order)]
        for k in order:
            r, n = runners[k], per_timing[k]
            t0 = clock()
            for _ in range(n):
                r.step()
            rates[k].append(n / (clock() - t0))
    return [statistics.median(x) for x in rates]


def mechanism_costs(cells, repeats, seconds):
    """The per-step mechanism metrics' price at the lessons' shapes, all timed in this run."""
    print(f"\nThe mechanism metrics at the lessons' shapes (batch {APP['batch']}, hidden "
          f"{APP['hidden']}, {APP['task']}): ms per training step, median of {repeats} "
          "interleaved timings, and the ratio to the step without them")
    print(f"{'cell':5} {'T':>4} {'without':>8} {'kept':>15} {'every step':>15} "
          f"{'Jacobian':>9}")
    modes = ("off", "kept", "every step")
    for cell in cells:
        for T in (50, 200):
            runners = [EngineRunner(cell, seq_len=T, metrics=m, **APP) for m in modes]
            off, kept, every = (1e3 / r for r in time_interleaved(runners, repeats, seconds))
            p = runners[1].run.last_pass
            jac = []
            for _ in range(5):
                t0 = time.process_time()
                p.jacobian_norm_per_step(0)
                jac.append(time.process_time() - t0)
            print(f"{cell:5} {T:4} {off:8.3f} {kept:8.3f} (×{kept / off:.2f}) "
                  f"{every:8.3f} (×{every / off:.2f}) {statistics.median(jac) * 1e3:9.2f}",
                  flush=True)
    print("without: the cells make no metrics (the engine before them); kept: each pass keeps "
          "what they need and nobody asks (a lab step between two updates); every step: "
          "input_grad_norm_per_step and param_grad_norm_per_step made at every step; Jacobian: "
          "ms per jacobian_norm_per_step call, made only on request")


def truncation_costs(cells, repeats, seconds):
    """ms per step with truncated backpropagation, against the full pass, T = 50."""
    ks = (None, 5, 20)
    repeats = max(3, repeats // 3)           # the per-step head at K = 20 is slow
    print(f"\nTruncated backpropagation (--truncate K) at the lessons' shapes, T = 50: ms per "
          f"training step, median of {repeats} interleaved timings")
    print(f"{'cell':5} {'task':8} " + " ".join(f"{'full' if k is None else f'K = {k}':>9}"
                                               for k in ks))
    for cell in cells:
        for task in ("adding", "echo"):
            runners = [EngineRunner(cell, task, APP["batch"], 50, APP["hidden"], truncate=k)
                       for k in ks]
            ms = [1e3 / r for r in time_interleaved(runners, repeats, seconds)]
            print(f"{cell:5} {task:8} " + " ".join(f"{m:9.2f}" for m in ms), flush=True)
    print("adding: one loss at the last step (one cut); echo: a loss at every step (about "
          "K + 1 backward passes)")


# ---- the matrix-multiply floor ----

def gemm_seconds(M, K, N, dtype=np.float32, calls=None):
    """Median time of one (M×K)·(K×N) product with NumPy, contiguous operands."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.empty((M, N), dtype)
    calls = calls or max(5, min(400, int(2e8 / (2 * M * K * N))))
    for _ in range(3):
        np.matmul(a, b, out=c)
    times = []
    for _ in range(9):
        t0 = time.process_time()
        for _ in range(calls):
            np.matmul(a, b, out=c)
        times.append((time.process_time() - t0) / calls)
    return statistics.median(times)


def matmul_floor(cell, batch, seq_len, hidden, input_size):
    """The GEMMs one training step of the recurrent layer cannot avoid, at this run's shapes:
    per step the gate pre-activations from [h; x; 1] (both biases folded in), per step but the
    first the backward product Wᵀ·δ, and once the weight gradients over all steps side by side.
    Returns (seconds, GFLOP)."""
    G, B, T, H, I = GATES[cell], batch, seq_len, hidden, input_size
    shapes = [((G * H, H + I + 1, B), T),            # forward, per step
              ((H, G * H, B), T - 1),                # backward through time, per step
              ((G * H, T * B, H + I + 1), 1)]        # weight gradients, all steps at once
    seconds = sum(n * gemm_seconds(*s) for s, n in shapes)
    flops = sum(n * 2 * s[0] * s[1] * s[2] for s, n in shapes)
    return seconds, flops / 1e9


# ---- equivalence with PyTorch ----

def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def check_against_torch(cell, task_name, B=8, T=12, H=16, seed=3):
    """Same weights (torch's default init, moved by PyTorch's names), same batch, float64:
    relative errors of the engine against torch for the loss, the worst parameter gradient,
    and the per-step norms ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖ for LSTM)."""
    task = get_task(task_name)
    T = max(T, task.min_len)
    I, O = task.input_size, task.output_size
    fused, head = _torch_modules(cell, I, H, O, True, torch.float64, seed)
    loop, _ = _torch_modules(cell, I, H, O, False, torch.float64, seed)
    arrays = {f"rnn.{k}": v.detach().numpy().copy() for k, v in fused.state_dict().items()}
    arrays.update({f"head.{k}": v.detach().numpy().copy() for k, v in head.state_dict().items()})
    with torch.no_grad():
        for name, p in loop.named_parameters():        # weight_ih ← weight_ih_l0, ...
            p.copy_(getattr(fused, name + "_l0"))
    b = task.batch(np.random.default_rng(seed), B, T, np.float64)
    x, y = torch.from_numpy(b.x), torch.from_numpy(b.y)

    model = Model.from_arrays(cell, arrays, task.head, dtype="float64")
    res = model.forward_backward(b.x, b.y, b.mask)

    out = fused(x)[0]
    Y = head(out) if task.head == "sequence" else head(out[:, -1])
    loss = _torch_loss(task.head, Y, y, b.mask)
    loss.backward()
    torch_grads = {n: p.grad.numpy() for n, p in fused.named_parameters()}
    torch_grads.update({f"head.{n}": p.grad.numpy() for n, p in head.named_parameters()})
    grad_err = max(_rel(res.grads[n], g) for n, g in torch_grads.items())

    hs, cs = _cell_loop(cell, loop, x, keep_c=True)
    out2 = torch.stack(hs, dim=1)
    Y2 = head(out2) if task.head == "sequence" else head(out2[:, -1])
    _torch_loss(task.head, Y2, y, b.mask).backward()
    h_norms = np.array([h.grad.norm().item() for h in hs])
    c_err = None
    if cell == "lstm":
        c_norms = np.array([c.grad.norm().item() for c in cs])
        c_err = _rel(res.cell_grad_norm_per_step, c_norms)
    return {"loss": _rel(res.loss, loss.item()), "grads": grad_err,
            "h": _rel(res.grad_norm_per_step, h_norms), "c": c_err}


# ---- report ----

def main_rates(cells, repeats, seconds, use_torch) -> dict:
    """Per cell, steps per second of the engine, then (with torch) the torch loop and fused."""
    out = {}
    for cell in cells:
        runners = [EngineRunner(cell, **MAIN)]
        if use_torch:
            runners += [TorchRunner(cell, fused=False, **MAIN),
                        TorchRunner(cell, fused=True, **MAIN)]
        out[cell] = time_interleaved(runners, repeats, seconds)
    return out


def run_many(args, use_torch):
    if not use_torch:
        sys.exit("--runs compares with PyTorch: run this script with a Python that has torch")
    print(f"NumPy {np.__version__}, PyTorch {torch.__version__}, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start; one thread each")
    print(f"The main comparison (batch {MAIN['batch']}, T = {MAIN['seq_len']}, hidden "
          f"{MAIN['hidden']}, {MAIN['task']}) in {args.runs} fresh processes, each the median of "
          f"{args.repeats} interleaved timings; × engine's steps per second over torch's")
    command = [sys.executable, os.path.abspath(__file__), "--json-main", "--cells", *args.cells,
               "--repeats", str(args.repeats), "--seconds", str(args.seconds)]
    ratios = {cell: ([], []) for cell in args.cells}
    for k in range(1, args.runs + 1):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"run {k} failed: {done.stderr.strip().splitlines()[-1:]}")
        rates = json.loads(done.stdout.strip().splitlines()[-1])
        parts = []
        for cell in args.cells:
            engine, loop, fused = rates[cell]
            ratios[cell][0].append(engine / loop)
            ratios[cell][1].append(engine / fused)
            parts.append(f"{cell} ×{engine / loop:.2f} loop, ×{engine / fused:.2f} fused")
        print(f"run {k:2}: " + "; ".join(parts), flush=True)
    print(f"\n{'cell':5} {'× loop: median':>15} {'lowest':>7} {'highest':>8} "
          f"{'× fused: median':>16} {'lowest':>7} {'highest':>8} {'runs ≥ 1× fused':>16}")
    for cell, (loop, fused) in ratios.items():
        met = sum(x >= 1 for x in fused)
        print(f"{cell:5} {statistics.median(loop):15.2f} {min(loop):7.2f} {max(loop):8.2f} "
              f"{statistics.median(fused):16.2f} {min(fused):7.2f} {max(fused):8.2f} "
              f"{f'{met} of {len(fused)}':>16}")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15, help="timings per contender (default 15)")
    ap.add_argument("--seconds", type=float, default=0.1,
                    help="length of one timing in seconds (default 0.1)")
    ap.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat the main comparison in this many fresh processes (default 1)")
    ap.add_argument("--json-main", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mechanism-only", action="store_true",
                    help="time only the mechanism metrics' and truncation's price at the "
                         "lessons' shapes")
    args = ap.parse_args(argv)
    use_torch = torch is not None and not args.no_torch
    if args.json_main:
        print(json.dumps(main_rates(args.cells, args.repeats, args.seconds, use_torch)))
        return
    if args.runs > 1:
        run_many(args, use_torch)
        return
    if args.mechanism_only:
        print(f"NumPy {np.__version__}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} at start; BLAS pinned to one thread")
        mechanism_costs(args.cells, args.repeats, args.seconds)
        truncation_costs(args.cells, args.repeats, args.seconds)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
        return

    print(f"NumPy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          "BLAS pinned to one thread")
    if use_torch:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread "
              f"({torch.get_num_interop_threads()} inter-op)")
    elif torch is None:
        print("PyTorch is not importable here: the comparison with it is skipped "
              "(run this script with a Python that has torch to include it)")
    else:
        print("PyTorch comparison skipped (--no-torch)")

    task = get_task(MAIN["task"])
    print(f"\nTraining steps per second, one thread: batch {MAIN['batch']}, "
          f"T = {MAIN['seq_len']}, hidden {MAIN['hidden']}, task {MAIN['task']}, float32, Adam; "
          f"per CPU-second, median of {args.repeats} interleaved timings")
    head = f"{'cell':5} {'engine':>8} {'GEMM floor':>11} {'of floor':>9}"
    if use_torch:
        head += f" {'torch loop':>11} {'torch fused':>12} {'× loop':>7} {'× fused':>8}"
    print(head)
    goals = []
    for cell in args.cells:
        rates = main_rates([cell], args.repeats, args.seconds, use_torch)[cell]
        floor_s, gflop = matmul_floor(cell, MAIN["batch"], MAIN["seq_len"], MAIN["hidden"],
                                      task.input_size)
        line = f"{cell:5} {rates[0]:8.1f} {1 / floor_s:11.1f} {rates[0] * floor_s:9.0%}"
        if use_torch:
            x_loop, x_fused = rates[0] / rates[1], rates[0] / rates[2]
            goals.append((cell, x_loop, x_fused))
            line += f" {rates[1]:11.1f} {rates[2]:12.1f} {x_loop:7.2f} {x_fused:8.2f}"
        print(line, flush=True)
    print("GEMM floor: the recurrent layer's unavoidable matrix products alone, timed with "
          "NumPy at the step's shapes (steps/s if all else were free)")
    if use_torch:
        missed = [f"{c} (×{xl:.2f} loop, ×{xf:.2f} fused)" for c, xl, xf in goals
                  if xl < 2 or xf < 1]
        print("Goal, at least 2× the torch loop and 1× the fused layer: "
              + ("met for every cell" if not missed else "NOT met for " + ", ".join(missed)))

    print(f"\nThe engine at the lessons' shapes: batch {APP['batch']}, hidden {APP['hidden']}, "
          f"task {APP['task']} (training steps per second)")
    print(f"{'cell':5} {'T = 50':>8} {'T = 200':>8}")
    for cell in args.cells:
        rates = time_interleaved([EngineRunner(cell, seq_len=T, **APP) for T in (50, 200)],
                                 args.repeats, args.seconds)
        print(f"{cell:5} {rates[0]:8.1f} {rates[1]:8.1f}", flush=True)

    mechanism_costs(args.cells, args.repeats, args.seconds)
    truncation_costs(args.cells, args.repeats, args.seconds)

    if use_torch:
        print("\nEngine against PyTorch, same weights moved by PyTorch's names, float64 "
              "(largest relative error)")
        print(f"{'cell':5} {'task/head':22} {'loss':>9} {'gradients':>10} "
              f"{'‖∂L/∂h_t‖':>10} {'‖∂L/∂c_t‖':>10}")
        worst = 0.0
        for cell in args.cells:
            for task_name in ("adding", "agreement", "echo"):
                e = check_against_torch(cell, task_name)
                worst = max(worst, e["loss"], e["grads"], e["h"], e["c"] or 0.0)
                c = "" if e["c"] is None else f"{e['c']:10.1e}"
                label = f"{task_name}/{get_task(task_name).head}"
                print(f"{cell:5} {label:22} {e['loss']:9.1e} {e['grads']:10.1e} "
                      f"{e['h']:10.1e} {c:>10}")
        print("Agreement: " + ("every figure within 1e-9" if worst <= 1e-9 else
                               f"WORST RELATIVE ERROR {worst:.1e}"))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
