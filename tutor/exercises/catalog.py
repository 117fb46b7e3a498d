"""The exercises: their files, titles, hints and solutions. Light: no NumPy until a solution
is asked for. The solutions shown to a learner are the engine's reference code itself
(`tutor/engine/reference.py`), so there is one version of each answer; the checker's random
cases are in `cases.py`."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Exercise:
    number: int
    file: str
    title: str
    functions: tuple[str, ...]
    short: str                           # the title in a narrow list
    hints: tuple[str, ...]
    helpers: tuple[str, ...] = ()        # reference functions the solution calls
    hint_about: tuple[tuple[str, ...], ...] = ()   # the results each hint is about

    def next_hint(self, shown: set[int], wrong: tuple[str, ...] = (),
                  failing: str | None = None) -> int | None:
        """The hint to show next: the first unseen one about a wrong result, else about the
        function at fault, else the first unseen one; None when all have been shown."""
        unseen = [i for i in range(len(self.hints)) if i not in shown]
        wrong_names = {w.split("/")[0] for w in wrong}
        about_result = [i for i in unseen if wrong_names & set(self.hint_about[i])]
        forward = self.functions[0]          # hint 0 is about the forward, the rest after it
        about_function = [i for i in unseen if failing is not None
                          and (i == 0) == (failing == forward)]
        return (about_result or about_function or unseen or [None])[0]

    @property
    def template(self) -> str:
        return resources.files("tutor.exercises").joinpath("templates", self.file).read_text(
            encoding="utf-8")

    @property
    def solution(self) -> str:
        """The engine's reference code for this exercise's functions, as a file that runs."""
        import inspect

        from tutor.engine import reference as ref

        return "import numpy as np\n\n\n" + "\n\n\n".join(
            inspect.getsource(getattr(ref, name)).rstrip()
            for name in self.helpers + self.functions) + "\n"


EXERCISES = (
    Exercise(1, "01_rnn_step.py", "RNN step, forward and backward",
             ("rnn_step_forward", "rnn_step_backward"), "RNN step", (
                 "Forward is one line of NumPy: products with the transposed weights "
                 "(x @ W_ih.T is (B, H)), both biases, then np.tanh. The cache can be a tuple "
                 "of x, h_prev, W_ih, W_hh and h.",
                 "Backward starts at the pre-activation: da = dh * (1 - h**2), shape (B, H). "
                 "Then a = x W_ihᵀ + … makes dx = da @ W_ih and dh_prev = da @ W_hh.",
                 "A weight gradient has the weight's shape: dW_ih = da.T @ x is (H, I). A bias "
                 "is added to every row of the batch, so db = da.sum(axis=0), shape (H,); "
                 "db_ih and db_hh are equal."),
             hint_about=(("h",), ("dx", "dh_prev"), ("dW_ih", "dW_hh", "db_ih", "db_hh"))),
    Exercise(2, "02_rnn_sequence.py", "Backprop through time, ‖∂L/∂h_t‖ per step",
             ("rnn_forward", "rnn_backward"), "Through time, ‖∂L/∂hₜ‖", (
                 "Forward: loop t over range(T), h_t = step(x[t], h_{t-1}), collect the states "
                 "with np.stack and keep every step's cache in a list.",
                 "Backward: loop t over reversed(range(T)) carrying dh_next (zeros at the "
                 "start): total = dh[t] + dh_next. Its norm is dh_norms[t]; feed the total to "
                 "the step's backward, whose dh_prev becomes the next dh_next.",
                 "Add the weight gradients over the steps (+=), write dx[t] per step, and after "
                 "the loop the last dh_prev is dh0."),
             ("rnn_step_forward", "rnn_step_backward"),
             (("h",), ("dh_norms", "dx"), ("dW_ih", "dW_hh", "db_ih", "db_hh", "dh0"))),
    Exercise(3, "03_clipping.py", "Gradient clipping by norm and by value",
             ("clip_by_norm", "clip_by_value"), "Clipping", (
                 "norm = np.sqrt(sum(np.sum(g**2) for g in grads.values())): one norm over "
                 "every array, not one per array.",
                 "Scale only when norm > max_norm, and by max_norm / norm; return the norm you "
                 "measured before scaling.",
                 "By value: {name: np.clip(g, -limit, limit) for name, g in grads.items()}."),
             ("global_norm",), (("norm",), ("by_norm",), ("by_value",))),
    Exercise(4, "04_lstm_step.py", "LSTM step, forward and backward",
             ("lstm_step_forward", "lstm_step_backward"), "LSTM step", (
                 "Split a (B, 4H) into four (B, H) blocks in the order i, f, g, o; only g uses "
                 "tanh. Cache x, h_prev, c_prev, the weights, the four gates and tanh(c).",
                 "In backward, first add h's share to the cell: dc_total = dc + dh·o·(1 − "
                 "tanh(c)²). Then do = dh·tanh(c)·o(1 − o), di = dc_total·g·i(1 − i), "
                 "df = dc_total·c_prev·f(1 − f), dg = dc_total·i·(1 − g²).",
                 "Stack [di, df, dg, do] into da (B, 4H) and finish as in the RNN: "
                 "dx = da @ W_ih, dh_prev = da @ W_hh, dW = da.T @ input; dc_prev = "
                 "dc_total·f."),
             ("sigmoid",), (("h", "c"), ("dx", "dh_prev", "dc_prev", "dW_ih", "dW_hh", "db_ih",
                                         "db_hh"), ("dx", "dh_prev", "dc_prev"))),
    Exercise(5, "05_gru_step.py", "GRU step, forward and backward",
             ("gru_step_forward", "gru_step_backward"), "GRU step", (
                 "Compute gi = x @ W_ih.T + b_ih and gh = h_prev @ W_hh.T + b_hh separately; "
                 "keep hn = gh[:, 2H:3H] (before the reset) in the cache: backward needs it.",
                 "dn = dh·(1 − z)·(1 − n²), dz = dh·(h_prev − n)·z(1 − z), dr = dn·hn·r(1 − r).",
                 "The input side's gradient is [dr, dz, dn]; the recurrent side's is "
                 "[dr, dz, dn·r]. dh_prev = (recurrent side) @ W_hh + dh·z; the biases take "
                 "the sum over the batch of their own side."),
             ("sigmoid",), (("h",), ("dx", "dW_ih", "dW_hh"), ("dh_prev", "db_ih", "db_hh"))),
)

BY_NUMBER = {e.number: e for e in EXERCISES}
# The exercises whose cell the lab can train once they pass (`lab_offer`).
CELL_EXERCISES = {"rnn": 1, "lstm": 4, "gru": 5}
