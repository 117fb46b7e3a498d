"""The plateau test on loss curves shaped like the lessons' runs (the session tests drive it on
the real engine; bench/lessons.py checks it against every lesson's claims)."""
from __future__ import annotations

import numpy as np

from tutor.lab.ending import EARLIEST_FRESH, MIN_WINDOW, PlateauTest, first_plateau

BASE = 1 / 6                                   # the adding problem's baseline MSE


def noisy(values, seed=0, spread=0.05):
    rng = np.random.default_rng(seed)
    values = np.asarray(values, dtype=float)
    return values * (1 + spread * rng.standard_normal(len(values)))


def test_a_long_flat_stretch_at_the_baseline_is_not_a_plateau():
    # An LSTM on adding: 2,500 flat steps at the baseline, then it learns and levels off.
    flat = noisy(np.full(2500, BASE))
    learned = noisy(np.concatenate([np.linspace(BASE, 0.002, 300), np.full(1500, 0.002)]), 1)
    assert first_plateau(flat, BASE) is None
    end = first_plateau(np.concatenate([flat, learned]), BASE)
    assert end is not None and end > 2500 + 300


def test_a_steady_fall_goes_on_and_its_floor_ends_it():
    falling = noisy(0.05 * np.exp(-np.arange(3000) / 600), 2)     # halves every ~400 steps
    assert first_plateau(falling, BASE) is None
    end = first_plateau(np.concatenate([falling, noisy(np.full(2000, falling[-1]), 3)]), BASE)
    assert end is not None and 3000 < end <= 5000


def test_spikes_neither_end_a_falling_run_nor_keep_a_flat_one_going():
    falling = noisy(0.05 * np.exp(-np.arange(2000) / 500), 4)
    falling[::40] = 10 * BASE                  # Adam's occasional spikes
    assert first_plateau(falling, BASE) is None
    flat = noisy(np.full(3000, 0.003), 5)
    flat[::40] = 10 * BASE
    assert first_plateau(flat, BASE) is not None


def test_a_diverged_loss_and_short_runs_never_plateau():
    assert first_plateau([0.001] * (MIN_WINDOW - 1), BASE) is None
    test = PlateauTest(BASE)
    for _ in range(2000):
        test.add(float("nan"))
    assert not test.plateaued
    assert len(test.blocks) == 0


def test_a_fresh_run_is_not_ended_before_the_lessons_are_done_with_it_but_trained_on_it_can():
    solved = noisy(np.concatenate([np.linspace(BASE, 0.001, 200), np.full(3000, 0.001)]), 6)
    end = first_plateau(solved, BASE)
    assert end is not None and EARLIEST_FRESH <= end < EARLIEST_FRESH + 100
    after = first_plateau(solved[:1500], BASE, earliest=MIN_WINDOW)
    assert after is not None and after < 1000
