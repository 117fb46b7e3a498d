"""The layers stay apart: the headless core never loads the UI (checked by import-linter with
the contracts in pyproject.toml), and the tutor's first screen waits for neither NumPy nor plotext
(they load with the first lab, after the first lesson is drawn)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable),
                                                     "lint-imports")
    out = subprocess.run([exe, "--config", os.path.join(ROOT, "pyproject.toml")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def loaded_after(statement: str) -> set[str]:
    code = (f"import sys\n{statement}\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return set(out.stdout.split())


@pytest.mark.parametrize("statement", [
    "import tutor.ui.app",
    "import tutor.cli",
    "from tutor.ui.app import TutorApp; TutorApp(lessons_dir=None)",
])
def test_the_first_screen_loads_neither_numpy_nor_plotext(statement, tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TUTOR_DATA_DIR", str(tmp_path))
    loaded = loaded_after(statement)
    assert "textual" in loaded or statement == "import tutor.cli"
    assert not {"numpy", "plotext", "textual_plotext"} & loaded


@pytest.mark.parametrize("module", ["tutor.engine.run", "tutor.lab.session", "tutor.lab.worker",
                                    "tutor.explorers.worked", "tutor.lessons", "tutor.progress"])
def test_the_headless_core_loads_no_ui(module):
    loaded = loaded_after(f"import {module}")
    assert not {"textual", "rich", "plotext", "textual_plotext"} & loaded
