"""Typed exceptions. Every message is one line naming the file (or field) and the problem."""

from __future__ import annotations


class FakebenchError(Exception):
    """Base class of every error fakebench raises on purpose."""


class ImageLoadError(FakebenchError):
    """An image file could not be decoded. ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(FakebenchError):
    """A configuration (YAML, CLI arguments, constructor options) is invalid."""


class CheckpointError(FakebenchError):
    """A checkpoint file is missing, unsafe, or does not match the model."""


class DataError(FakebenchError):
    """A dataset is malformed (bad manifest, escaping paths, only one class, ...)."""
