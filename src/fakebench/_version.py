"""The package version (its own module so that the CLI can print it without importing more)."""

__version__ = "0.1.0"
