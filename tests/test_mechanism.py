"""The mechanism views: their arithmetic against the real engine, and what the lab shows."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tutor.engine import Settings
from tutor.engine.run import Run
from tutor.engine.tasks import TASKS
from tutor.lab.mechanism import (DECADE_GLYPHS, decade_levels, first_half_share, fit_tokens,
                                 format_share, predicted_grad_norms, update_shares)
from tutor.ui.mechanism_charts import LocalFactorChart, UpdateShareChart

from test_lab import lab_app, pane_of, trained


def test_shares_sum_to_one_and_the_first_half_is_read_off():
    norms = np.array([1.0, 1.0, 2.0, 4.0])
    assert update_shares(norms).tolist() == [0.125, 0.125, 0.25, 0.5]
    assert first_half_share(norms) == 0.25
    assert np.isnan(update_shares([0.0, 0.0])).all()
    assert math.isnan(first_half_share([np.inf, 1.0]))
    assert [format_share(x) for x in (0.4, 0.004, 3e-9, 0.0)] == ["40%", "0.4%", "3e-07%", "0%"]


def test_decade_levels_and_glyphs():
    levels = decade_levels([1.0, 0.5, 0.05, 0.002, 1e-9, 0.0, np.nan])
    assert levels == [0, 0, 1, 2, len(DECADE_GLYPHS), len(DECADE_GLYPHS), None]


def test_fitted_tokens_keep_the_start_and_the_end():
    words = [f"w{i}" for i in range(40)]
    shown = fit_tokens(words, 60)
    assert shown[0] == 0 and shown[-1] == 39 and None in shown
    assert sum(len(words[i]) + 1 for i in shown if i is not None) + 2 <= 60
    assert fit_tokens(words[:5], 60) == [0, 1, 2, 3, 4]


def test_one_unit_rnn_the_product_of_local_factors_is_the_gradient():
    """With one hidden unit and one sequence, ∂L/∂h_t is ∂L/∂h_T times the one-step factors
    exactly: the prediction the chart draws must then lie on the measured curve."""
    run = Run(Settings(cell="rnn", task="adding", seq_len=12, hidden=1, batch=1, seed=3))
    run.step()
    p = run.last_pass
    measured = p.grad_norm_per_step
    predicted = predicted_grad_norms(p.jacobian_norm_per_step(0), measured)
    np.testing.assert_allclose(predicted, measured, rtol=1e-4)


def test_with_more_units_the_product_bounds_the_gradient():
    run = Run(Settings(cell="rnn", task="adding", seq_len=20, hidden=8, batch=1, seed=1))
    run.step()
    p = run.last_pass
    predicted = predicted_grad_norms(p.jacobian_norm_per_step(0), p.grad_norm_per_step)
    assert np.all(predicted >= p.grad_norm_per_step * (1 - 1e-4))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_names_a_token_per_input_step(task):
    settings = Settings(cell="lstm", task=task, seq_len=TASKS[task].min_len + 6, hidden=8, batch=4)
    run = Run(settings)
    run.step()
    sample = run.sample()
    steps = run.last_pass.grad_norm_per_step.shape[0]
    assert len(sample.tokens) == steps == len(sample.input_grad_norm_per_step)
    assert all(t and "\n" not in t for t in sample.tokens)


async def test_the_mechanism_views_in_the_lab_at_80x24():
    app = lab_app(Settings(cell="rnn", task="adding", seq_len=30, hidden=16, batch=8))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane, steps=5)
        await pilot.press("g")                              # the second page: the mechanism
        for _ in range(40):
            await pilot.pause(0.1)
            share, factor = pane.query_one(UpdateShareChart), pane.query_one(LocalFactorChart)
            if share.plain_lines and "%" in share.plain_lines[0] \
                    and factor.plain_lines and "median" in factor.plain_lines[0]:
                break
        assert share.display and factor.display
        assert "%" in share.plain_lines[0], share.plain_lines[0]
        assert "median" in factor.plain_lines[0], factor.plain_lines[0]
        sample = str(pane.query_one("#lab-sample").render())
        lines = sample.split("\n")
        assert lines[0].startswith("input") and lines[1].startswith("feels")
        assert "▲" in lines[0]                               # the two marked numbers
        assert set(lines[1][7:]) <= set(DECADE_GLYPHS + " ?")
        assert any(g in lines[1] for g in DECADE_GLYPHS)


async def test_compare_mode_gives_each_cell_its_own_strip():
    app = lab_app(Settings(cell="rnn", task="remember", seq_len=12, hidden=8, batch=8))
    async with app.run_test(size=(160, 45)) as pilot:
        pane = pane_of(app)
        await trained(pilot, pane)
        await pilot.press("x")
        await trained(pilot, pane, steps=3)
        for _ in range(40):
            await pilot.pause(0.1)
            lines = str(pane.query_one("#lab-sample").render()).split("\n")
            if len(lines) >= 5:
                break
        assert [line.split()[0] for line in lines[1:4]] == ["rnn", "lstm", "gru"]
        assert all(c.display for c in pane.charts)
