"""Key fuzz: random key presses at 80×24 while training, with random resizes down to 20×8.

    python bench/stress.py [--keys 5000] [--seed 1] [--resize-every 50]

Presses the app's own bindings (all but the quit keys) and random printable keys, in every screen
the keys reach (help, lesson list, settings panel, checkpoints), while the lab trains in its
worker process. Passes when no exception escaped, the app is still running, it still answers a
key afterwards, and exactly one training process is left. Prints one summary line.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

QUIT_KEYS = {"q", "ctrl+q", "ctrl+c"}
EXTRA_KEYS = ["up", "down", "left", "right", "enter", "tab", "shift+tab", "escape", "pageup",
              "pagedown", "home", "end", "backspace"]


def key_pool(app) -> list[str]:
    keys = set(EXTRA_KEYS)
    for binding in app.BINDINGS:
        for key in binding.key.split(","):
            keys.add(key.strip())
    printable = [c for c in string.ascii_letters + string.digits + string.punctuation + " "]
    keys.update(printable)
    return sorted(k for k in keys if k not in QUIT_KEYS)


def training_children() -> list[int]:
    import multiprocessing
    return [p.pid for p in multiprocessing.active_children()]


async def fuzz(app, n_keys: int, seed: int, resize_every: int = 50) -> dict:
    rng = random.Random(seed)
    pool = key_pool(app)
    printable_map = {c: _key_name(c) for c in pool}
    resizes = 0
    recent: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        for i in range(n_keys):
            if resize_every and i % resize_every == resize_every - 1:
                size = (rng.randint(20, 120), rng.randint(8, 40))
                recent.append(f"resize {size[0]}x{size[1]}")
                await _within(pilot.resize_terminal(*size), recent)
                resizes += 1
            key = printable_map[rng.choice(pool)]
            recent.append(key)
            await _within(pilot.press(key), recent)
            if app.return_code is not None or not app.is_running:
                raise AssertionError(f"the app stopped after {i + 1} keys: ...{recent[-20:]}")
        # Back to a normal size, close whatever is open, and check the app still answers.
        await pilot.resize_terminal(80, 24)
        for _ in range(4):
            await pilot.press("escape")
        await pilot.pause(0.2)
        before = len(app.screen_stack)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        answered = len(app.screen_stack) == before + 1
        await pilot.press("escape")
        await pilot.pause(0.2)
        workers = len(training_children())
    return {"keys": n_keys, "resizes": resizes, "answered": answered, "workers": workers}


async def _within(awaitable, recent: list[str], seconds: float = 20.0) -> None:
    """A key the app never finishes handling is a hang: fail and name the keys that led to it."""
    try:
        await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"the app hung for {seconds:g} s after: {recent[-25:]}") from None


def _key_name(c: str) -> str:
    """Pilot wants key names, not characters, for punctuation and space."""
    if len(c) != 1 or c.isalnum():
        return c
    from textual.keys import _character_to_key
    return _character_to_key(c)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--resize-every", type=int, default=50)
    args = ap.parse_args()
    os.environ.setdefault("RNN_TUTOR_DATA_DIR", tempfile.mkdtemp(prefix="rnn-tutor-stress-"))
    from tutor.ui.app import TutorApp

    t0 = time.time()
    result = asyncio.run(fuzz(TutorApp(), args.keys, args.seed, args.resize_every))
    ok = result["answered"] and result["workers"] <= 1
    print(f"stress: {result['keys']} keys, {result['resizes']} resizes down to 20×8, "
          f"{time.time() - t0:.0f} s: no exception; app answered a key afterwards: "
          f"{result['answered']}; training processes left: {result['workers']} -> "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
