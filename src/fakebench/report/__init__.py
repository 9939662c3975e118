"""Reports built from the results store alone: JSON, Markdown and plots."""

from .build import build_report, format_table
from .summary import summarize_run

__all__ = ["build_report", "format_table", "summarize_run"]
