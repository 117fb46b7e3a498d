"""Export in the browser: under `rnn-tutor serve`, E in the lab delivers the run's files to the
tab (textual-serve's `deliver_file_start` and its /download/ endpoint), as a browser would
download them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.serveclient import Served, Tab  # noqa: E402


def deliveries(tab: Tab) -> list[str]:
    keys = []
    for text in tab.texts:
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if isinstance(message, list) and message[:1] == ["deliver_file_start"]:
            keys.append(message[1])
    return keys


async def test_export_downloads_the_runs_files_in_the_browser():
    served = Served("--lesson", "1")
    try:
        async with Tab(served.url, 120, 40) as tab:         # wide: lesson and lab both show
            assert await tab.wait_for(lambda t: "steps/s" in t.text or "done at step" in t.text,
                                      60), tab.text
            await tab.keys("E")
            assert await tab.wait_for(lambda t: len(deliveries(t)) >= 3, 30), tab.texts[-5:]
            files = {}
            async with aiohttp.ClientSession() as http:
                for key in deliveries(tab):
                    async with http.get(f"{served.url}download/{key}") as response:
                        assert response.status == 200
                        name = response.headers["Content-Disposition"].split("filename=")[-1]
                        files[name.strip('"')] = await response.text()
    finally:
        served.close()
    by_kind = {name.rsplit("-", 1)[-1]: text for name, text in files.items()}
    assert set(by_kind) == {"settings.json", "steps.jsonl", "lab.svg"}, list(files)
    assert json.loads(by_kind["settings.json"])["command"].startswith("rnn-tutor lab --cell rnn")
    first = json.loads(by_kind["steps.jsonl"].splitlines()[0])
    assert first["step"] == 1 and "grad_norm_per_step" in first
    assert by_kind["lab.svg"].lstrip().startswith("<svg")
