"""The lab's sample: one sequence of the batch as tokens, each shaded by how strongly that
sequence's loss depends on it (‖∂L/∂x_t‖), then its target and each cell's prediction.

Shading is twofold, so it reads without colour (NO_COLOR): the tokens' weight, and a glyph per
decade below the most felt input on the line under them (█ ▓ ▒ ░, blank for less)."""
from __future__ import annotations

from rich.style import Style
from rich.text import Text

from tutor.lab.history import RunHistory
from tutor.lab.mechanism import decade_levels, fit_tokens, glyph, scale_legend

LABEL = 7                     # "input  ", "feels  ", "target "
TOKEN_STYLES = (Style(bold=True, reverse=True), Style(bold=True), Style(), Style(dim=True),
                Style(dim=True))


def sensitivity_of(run: RunHistory, tokens: tuple[str, ...]) -> tuple[float, ...] | None:
    values = run.sample.input_grad_norm_per_step if run.sample is not None else None
    if values is None or len(values) != len(tokens):
        return None
    return values


def sample_text(runs: list[RunHistory], compare: bool, width: int) -> Text:
    """The sample area's lines for these runs (all of one generation, on the same inputs)."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    if not runs:
        text.append("sample: appears after the first step", "dim")
        return text
    sample = runs[0].sample
    tokens = sample.tokens
    felt = [(run, sensitivity_of(run, tokens)) for run in runs] if tokens else []
    felt = [(run, values) for run, values in felt if values is not None]
    if felt:
        shown = fit_tokens(list(tokens), max(10, width - LABEL))
        levels = decade_levels(felt[0][1])
        text.append("input  ", "bold")
        for i in shown:
            if i is None:
                text.append("… ", "dim")
            else:
                text.append(tokens[i], TOKEN_STYLES[levels[i] if levels[i] is not None else 4])
                text.append(" ")
        for run, values in felt:
            levels = decade_levels(values)
            label = f"{run.cell:<6} " if compare else "feels  "
            text.append("\n" + label, "bold")
            for i in shown:
                text.append("  " if i is None else glyph(levels[i]) * len(tokens[i]) + " ")
        if not compare:
            legend = "  " + scale_legend()
            if text.plain.split("\n")[-1].__len__() + len(legend) <= width:
                text.append(legend, "dim")
    else:
        text.append("input  ", "bold")
        text.append(sample.inputs)
    text.append("\ntarget ", "bold")
    text.append(sample.target)
    for run in runs:
        label = f"  {run.name}" if compare else "  prediction"
        text.append(label + " ", "bold")
        text.append(run.sample.prediction)
    if felt and sample.inputs.rstrip(" …") not in ("".join(tokens), " ".join(tokens)):
        text.append(f"  · {sample.inputs}", "dim")     # e.g. which numbers were marked
    text.append(f"   (step {runs[0].step})", "dim")
    return text
