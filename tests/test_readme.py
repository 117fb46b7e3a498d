"""The README's Python example runs as printed, and its commands name real options."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "README has no Python example"
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "(16, 4)" in out.stdout             # the gradient's shape it prints


def test_every_train_command_in_readme_parses():
    from tutor.cli import build_parser

    parser = build_parser()
    commands = [c for c in re.findall(r"`rnn-tutor (train [^`]+)`", README) if "--help" not in c]
    assert len(commands) >= 8
    for command in commands:
        parser.parse_args(command.split())
