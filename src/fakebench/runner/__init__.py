"""Experiment runner: YAML config -> detectors x attacks x dataset -> resumable SQLite store."""

from .config import Experiment, load_experiment, parse_experiment
from .run import STORE_FILE, evaluate, prepare
from .store import Store

__all__ = ["Experiment", "load_experiment", "parse_experiment", "evaluate", "prepare", "Store", "STORE_FILE"]
