"""Experiment runner: YAML config -> detectors x attacks x dataset -> resumable SQLite store."""

from .config import Experiment, load_experiment, parse_experiment
from .run import (
           SHARD_DIR,
           STORE_FILE,
           dist_info,
           evaluate,
           merge_shards,
           prepare,
           shard_path,
)
from .store import Store

__all__ = ["Experiment", "load_experiment", "parse_experiment", "evaluate", "prepare", "Store", "STORE_FILE",
           "SHARD_DIR", "dist_info", "merge_shards", "shard_path"]
