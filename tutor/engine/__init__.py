"""The training engine: pure NumPy, no UI. See `Run` for the whole API in one place."""
from .model import Model, Pass, WeightsError
from .run import Run, StepRecord
from .settings import CELLS, OPTIMIZERS, TASKS, Settings, SettingsError
from .tasks import Baseline, Sample, get_task

__all__ = ["CELLS", "OPTIMIZERS", "TASKS", "Baseline", "Model", "Pass", "Run", "Sample",
           "Settings", "SettingsError", "StepRecord", "WeightsError", "get_task"]
