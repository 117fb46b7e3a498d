"""A short, seeded version of bench/stress.py: random keys and resizes while training."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))

from stress import fuzz, key_pool  # noqa: E402

from tutor.ui.app import TutorApp  # noqa: E402


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TUTOR_DATA_DIR", str(tmp_path / "data"))


def test_key_pool_has_the_bindings_but_no_quit_key():
    pool = key_pool(TutorApp)
    assert {"space", "n", "p", "1", "4", "c", "v", "question_mark"} <= set(pool)
    assert not {"q", "ctrl+q", "ctrl+c"} & set(pool)


async def test_random_keys_and_resizes_leave_a_working_app():
    result = await fuzz(TutorApp(), n_keys=200, seed=11, resize_every=20)
    assert result["answered"], "the app no longer answers keys"
    assert result["workers"] <= 1, "a training process leaked"
