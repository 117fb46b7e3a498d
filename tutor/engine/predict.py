"""Next-word prediction for one typed sentence, and how much it depends on each word.

    words = split_words("i grew up in brazil . i speak fluent")
    answer = predict_next(model, get_task("language"), words)
    answer["next"]          # [{"word": "portuguese", "p": 0.97}, ...] best first
    answer["sensitivity"]   # [{"word": "i", "grad_norm": ...}, ...] one per input word

The sensitivity of word t is ‖∂ log p(top word) / ∂x_t‖, the gradient with respect to that
word's whole one-hot input vector. It comes from the cell's own backward pass: the gate
pre-activation gradients dA_t, times the input weights, give ∂/∂x_t = dA_tᵀ W_ih.
"""
from __future__ import annotations

import numpy as np

from .heads import softmax
from .model import Model
from .tasks import Task


class UnknownWord(ValueError):
    """A word outside the task's vocabulary; the message names it."""


def split_words(text: str) -> list[str]:
    """Lower case, split on spaces, and "." as a word of its own ("france." -> "france", ".")."""
    return text.lower().replace(".", " . ").split()


def vocabulary(task: Task) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The task's input words and output words, or None for a task whose inputs are not words."""
    words = getattr(task, "words", None)
    outputs = getattr(task, "output_words", None)
    if words is None or outputs is None:
        return None
    return tuple(words), tuple(outputs)


def split_known(task: Task, words: list[str]) -> tuple[list[str], list[str]]:
    """The words the task knows, in order, and the ones it does not (each once, in order)."""
    known = vocabulary(task)
    if known is None:
        raise ValueError(f"the {task.name} task does not take words")
    vocab = set(known[0])
    unknown = [w for w in dict.fromkeys(words) if w not in vocab]
    return [w for w in words if w in vocab], unknown


def encode(task: Task, words: list[str]) -> np.ndarray:
    """(T, I) one-hot rows in float64; UnknownWord names the first word the task does not know."""
    known = vocabulary(task)
    if known is None:
        raise ValueError(f"the {task.name} task does not take words")
    index = {w: i for i, w in enumerate(known[0])}
    for w in words:
        if w not in index:
            raise UnknownWord(f"unknown word {w!r}: the {task.name} task knows "
                              f"{len(index)} words")
    X = np.zeros((len(words), len(index)))
    X[np.arange(len(words)), [index[w] for w in words]] = 1.0
    return X


def logits_and_input_grads(model: Model, X: np.ndarray, target: int | None = None):
    """Run one sequence X (T, I). Returns the logits after the last word (O,), the output whose
    log-probability was differentiated (the most likely one unless `target` is given), and
    ∂ log p(target) / ∂X as a (T, I) array."""
    p = model.params
    with np.errstate(all="ignore"):
        Xt = np.asarray(X, dtype=model.dtype)[:, None, :]          # (T, 1, I)
        cache = model.cell.forward(p, Xt)
        h = cache.H[-1, 0]                                          # (H,)
        W, b = p["head.weight"], p["head.bias"]
        z = W @ h + b
        P = softmax(z.astype(np.float64, copy=True)[None])[0]
        k = int(P.argmax()) if target is None else int(target)
        dz = -P
        dz[k] += 1.0                                                # ∂ log p_k / ∂z
        last = (W.T @ dz.astype(model.dtype))[:, None]              # (H, 1), the cells' layout
        back = model.cell.backprop(p, cache, last, None)
        if back.dA is not None:
            dX = back.dA[:, 0, :] @ p["weight_ih_l0"]               # (T, I)
        else:                                # a cell without gate gradients (`StepwiseCell`)
            dX = back.dX[:, 0, :]
    return z, k, dX


def predict_next(model: Model, task: Task, words: list[str], top: int = 3) -> dict:
    """The top next words with their probabilities, and each input word's sensitivity."""
    known = vocabulary(task)
    X = encode(task, words)
    z, k, dX = logits_and_input_grads(model, X)
    P = softmax(np.asarray(z, dtype=np.float64)[None])[0]
    outputs = known[1]
    best = np.argsort(-P, kind="stable")[:top]
    norms = np.sqrt(np.sum(np.asarray(dX, dtype=np.float64) ** 2, axis=1))
    return {
        "next": [{"word": outputs[i], "p": round(float(P[i]), 6)} for i in best],
        "sensitivity": [{"word": w, "grad_norm": float(f"{g:.6g}")}
                        for w, g in zip(words, norms)],
    }
