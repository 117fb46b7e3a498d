"""The training engine: pure NumPy, no UI. See `Run` for the whole API in one place.

Names are loaded on first use, so importing `tutor.engine` (or its settings) does not load NumPy:
the tutor's first screen does not wait for it.
"""
from importlib import import_module

_EXPORTS = {
    "Model": "model", "Pass": "model", "WeightsError": "model",
    "Run": "run", "StepRecord": "run",
    "CELLS": "settings", "OPTIMIZERS": "settings", "TASKS": "settings", "Settings": "settings",
    "SettingsError": "settings",
    "Baseline": "tasks", "Sample": "tasks", "get_task": "tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
